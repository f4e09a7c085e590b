rule aggregate:
    input:
        model=f"{OUT}/model.json",
        features=layer_outputs("features"),
        logit_lens=layer_outputs("logit_lens"),
        input_scores=layer_outputs("input_scores"),
        output_scores=layer_outputs("output_scores"),
        best_factors=layer_outputs("best_factors"),
        sae_metrics=(
            layer_outputs("sae_metrics", TRAINED_LAYERS) if TRAINED_LAYERS else []
        ),
    output:
        features=f"{OUT}/features.parquet",
        summary=f"{OUT}/summary.parquet",
    log:
        f"{OUT}/logs/aggregate.log",
    benchmark:
        f"{OUT}/benchmarks/aggregate.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=2000,
    params:
        run_dir=lambda wildcards, output: Path(output.features).parent,
        layers=" ".join(str(layer) for layer in LAYERS),
        strata=" ".join(f"{cut!r}" for cut in GENERATION["output_strata"]),
    shell:
        "saesteer aggregate --run-dir {params.run_dir} --model {input.model} "
        "--layers {params.layers} --output-strata {params.strata} "
        "--features-out {output.features} --summary-out {output.summary} 2> {log}"


PLOTS = {
    "roles_across_layers": "Scores across layers",
    "output_threshold_curve": "Filtering by output score",
    "input_vs_output": "Scores across layers",
    "best_factor_histogram": "Steering",
    "gen_success_filtering": "Filtering by output score",
}


rule plots:
    input:
        features=f"{OUT}/features.parquet",
        summary=f"{OUT}/summary.parquet",
    output:
        [
            report(
                f"{OUT}/plots/{name}.png",
                caption=f"../report/{name}.rst",
                category=category,
            )
            for name, category in PLOTS.items()
        ],
    log:
        f"{OUT}/logs/plots.log",
    benchmark:
        f"{OUT}/benchmarks/plots.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=2000,
    params:
        out=lambda wildcards, output: Path(output[0]).parent,
    shell:
        "saesteer plots --features {input.features} --summary {input.summary} "
        "--out {params.out} 2> {log}"


rule findings:
    input:
        features=f"{OUT}/features.parquet",
        summary=f"{OUT}/summary.parquet",
    output:
        json=f"{OUT}/findings.json",
        html=report(
            f"{OUT}/findings.html",
            caption="../report/findings.rst",
            category="Findings",
        ),
    log:
        f"{OUT}/logs/findings.log",
    benchmark:
        f"{OUT}/benchmarks/findings.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=1000,
    params:
        run=config["run"],
    shell:
        "saesteer findings --run {params.run} --features {input.features} "
        "--summary {input.summary} --out-json {output.json} --out-html {output.html} 2> {log}"

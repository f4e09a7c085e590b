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
        settings=section_settings("findings"),
    shell:
        "saesteer plots --features {input.features} --summary {input.summary} "
        "--settings {params.settings:q} --out {output} 2> {log}"

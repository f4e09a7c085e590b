rule aggregate:
    input:
        model=f"{OUT}/model.json",
        features=layer_outputs("features"),
        logit_lens=layer_outputs("logit_lens"),
        input_scores=layer_outputs("input_scores"),
        densities=layer_outputs("densities"),
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
        settings=rule_settings("aggregate"),
        optional=optional_inputs("sae_metrics"),
    shell:
        "saesteer aggregate --model {input.model} --features {input.features} "
        "--logit-lens {input.logit_lens} --input-scores {input.input_scores} "
        "--densities {input.densities} "
        "--output-scores {input.output_scores} --best-factors {input.best_factors} "
        "{params.optional} --settings {params.settings:q} "
        "--out-features {output.features} --out-summary {output.summary} 2> {log}"

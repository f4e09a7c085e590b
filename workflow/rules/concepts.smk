rule concepts:
    input:
        features=f"{OUT}/layers/{{layer}}/features.parquet",
        logit_lens=f"{OUT}/layers/{{layer}}/logit_lens.parquet",
        activations=f"{OUT}/layers/{{layer}}/activations.parquet",
    output:
        f"{OUT}/layers/{{layer}}/concepts.parquet",
    log:
        f"{OUT}/logs/concepts/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/concepts/{{layer}}.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=1000,
    params:
        settings=concept_settings("concepts"),
    shell:
        "saesteer concepts --layer {wildcards.layer} --features {input.features} "
        "--logit-lens {input.logit_lens} --activations {input.activations} "
        "--settings {params.settings:q} --out {output} 2> {log}"

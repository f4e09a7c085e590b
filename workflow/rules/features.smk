include: "helpers/features.smk"


rule features:
    input:
        sae=f"{OUT}/layers/{{layer}}/sae.json",
    output:
        f"{OUT}/layers/{{layer}}/features.parquet",
    log:
        f"{OUT}/logs/features/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/features/{{layer}}.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=1000,
    params:
        settings=feature_settings,
    shell:
        "saesteer features --layer {wildcards.layer} --sae {input.sae} "
        "--settings {params.settings:q} --out {output} 2> {log}"

include: "helpers/sae.smk"


rule sae:
    input:
        sae_files,
    output:
        f"{OUT}/layers/{{layer}}/sae.json",
    log:
        f"{OUT}/logs/sae/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/sae/{{layer}}.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=4000,
    params:
        settings=sae_settings,
        weights=sae_weights_stamp,
    shell:
        "saesteer sae --layer {wildcards.layer} --settings {params.settings:q} "
        "--out {output} 2> {log}"

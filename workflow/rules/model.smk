rule model:
    input:
        embedded_model,
    output:
        f"{OUT}/model.json",
    log:
        f"{OUT}/logs/model.log",
    benchmark:
        f"{OUT}/benchmarks/model.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=2000,
    params:
        settings=rule_settings("model"),
    shell:
        "saesteer model --settings {params.settings:q} --resources resources "
        "--out {output} 2> {log}"

rule embedded_model:
    output:
        protected(directory("resources/models/{name}")),
    log:
        "resources/logs/embedded_model/{name}.log",
    benchmark:
        "resources/benchmarks/embedded_model/{name}.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=4000,
    shell:
        "saesteer embedded --name {wildcards.name} --resources resources 2> {log}"


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
        source=MODEL["source"],
        dtype=MODEL["dtype"],
    shell:
        "saesteer model --source {params.source:q} --dtype {params.dtype} "
        "--resources resources --out {output} 2> {log}"

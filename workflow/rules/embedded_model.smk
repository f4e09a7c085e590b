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
        "saesteer embedded-model --name {wildcards.name} --downloads resources/downloads "
        "--out {output} 2> {log}"

rule corpus:
    output:
        f"{OUT}/corpus/documents.parquet",
    log:
        f"{OUT}/logs/corpus.log",
    benchmark:
        f"{OUT}/benchmarks/corpus.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=4000,
    params:
        settings=rule_settings("corpus"),
    shell:
        "saesteer corpus --settings {params.settings:q} --out {output} 2> {log}"

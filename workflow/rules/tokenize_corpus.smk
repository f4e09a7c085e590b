rule tokenize_corpus:
    input:
        model=f"{OUT}/model.json",
        documents=f"{OUT}/corpus/documents.parquet",
    output:
        f"{OUT}/corpus/chunks.parquet",
    log:
        f"{OUT}/logs/tokenize_corpus.log",
    benchmark:
        f"{OUT}/benchmarks/tokenize_corpus.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=4000,
    params:
        settings=rule_settings("tokenize_corpus"),
    shell:
        "saesteer tokenize-corpus --model {input.model} --documents {input.documents} "
        "--settings {params.settings:q} --out {output} 2> {log}"

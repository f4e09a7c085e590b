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
        sources=CORPUS["sources"],
        files=CORPUS["files"],
        seed=CORPUS["seed"],
    shell:
        "saesteer corpus --sources {params.sources:q} --files {params.files:q} "
        "--seed {params.seed} --out {output} 2> {log}"


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
        context_size=CORPUS["context_size"],
        heldout_fraction=CORPUS["heldout_fraction"],
        max_tokens=(
            f"--max-tokens {CORPUS['max_tokens']}" if CORPUS["max_tokens"] else ""
        ),
    shell:
        "saesteer tokenize --model {input.model} --documents {input.documents} "
        "--context-size {params.context_size} --heldout-fraction {params.heldout_fraction} "
        "{params.max_tokens} --out {output} 2> {log}"

rule manifest:
    input:
        model=f"{OUT}/model.json",
        saes=expand(f"{OUT}/layers/{{layer}}/sae.json", layer=LAYERS),
        documents=f"{OUT}/corpus/documents.parquet" if USES_CORPUS else [],
        chunks=f"{OUT}/corpus/chunks.parquet" if USES_CORPUS else [],
    output:
        f"{OUT}/manifest.json",
    log:
        f"{OUT}/logs/manifest.log",
    benchmark:
        f"{OUT}/benchmarks/manifest.tsv"
    conda:
        "../envs/saesteer.yaml"
    params:
        run=config["run"],
        optional=optional_inputs("documents", "chunks"),
        sources=(
            "--corpus-sources " + " ".join(shlex.quote(s) for s in CORPUS["sources"])
            if USES_CORPUS
            else ""
        ),
    shell:
        "saesteer manifest --run-name {params.run} --model {input.model} "
        "--sae {input.saes} {params.optional} {params.sources} --out {output} 2> {log}"

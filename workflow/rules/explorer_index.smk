rule explorer_index:
    input:
        templates=TEMPLATES,
        features=f"{OUT}/features.parquet",
        concepts=expand(
            f"{OUT}/layers/{{layer}}/concepts.parquet",
            layer=EXPLORER_CONCEPT_LAYERS,
        ),
        pages=expand(f"{OUT}/explorer/layers/{{layer}}", layer=LAYERS),
    output:
        f"{OUT}/explorer/index.html",
    log:
        f"{OUT}/logs/explorer_index.log",
    benchmark:
        f"{OUT}/benchmarks/explorer_index.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=1000,
    params:
        run=config["run"],
        optional=optional_inputs("concepts"),
    shell:
        "saesteer explorer-index --run-name {params.run} --features {input.features} "
        "{params.optional} --pages {input.pages} --out {output} 2> {log}"

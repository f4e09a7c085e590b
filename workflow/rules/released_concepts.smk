include: "helpers/released_concepts.smk"


rule released_concepts:
    input:
        released_concept_files,
    output:
        f"{OUT}/concepts/released_concepts.parquet",
    log:
        f"{OUT}/logs/released_concepts.log",
    benchmark:
        f"{OUT}/benchmarks/released_concepts.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=2000,
    params:
        settings=canonical_json(
            {
                "data_dir": str(RELEASED_DATA),
                "model_dir": CONCEPTS["released"]["model_dir"],
                "n_select": CONCEPTS["n_select"],
            }
        ),
    shell:
        "saesteer released-concepts --settings {params.settings:q} --out {output} 2> {log}"

include: "helpers/concept_table.smk"


rule concept_table:
    input:
        unpack(concept_table_inputs),
    output:
        scores=f"{OUT}/concepts/concept_scores.parquet",
        table=f"{OUT}/concepts/concept_table.parquet",
        html=report(
            f"{OUT}/concepts/concept_table.html",
            caption="../report/concept_table.rst",
            category="Concept steering",
        ),
    log:
        f"{OUT}/logs/concept_table.log",
    benchmark:
        f"{OUT}/benchmarks/concept_table.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=1000,
    params:
        settings=concept_settings("concept_table"),
        optional=optional_inputs("ratings", "released"),
    shell:
        "saesteer concept-table {params.optional} "
        "--output-scores {input.output_scores} --settings {params.settings:q} "
        "--out-scores {output.scores} --out-table {output.table} "
        "--out-html {output.html} 2> {log}"

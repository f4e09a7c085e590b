include: "helpers/explorer_pages.smk"


rule explorer_pages:
    input:
        unpack(explorer_page_inputs),
    output:
        directory(f"{OUT}/explorer/layers/{{layer}}"),
    log:
        f"{OUT}/logs/explorer_pages/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/explorer_pages/{{layer}}.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=2000,
    params:
        run=config["run"],
        settings=section_settings("explorer"),
        optional=optional_inputs("concepts", "concept_ratings"),
    shell:
        "saesteer explorer-pages --run-name {params.run} --model {input.model} "
        "--features {input.features} --logit-lens {input.logit_lens} "
        "--negative-logits {input.negative_logits} "
        "--input-scores {input.input_scores} --densities {input.densities} "
        "--output-scores {input.output_scores} "
        "--activations {input.activations} --generations {input.generations} "
        "--gen-metrics {input.gen_metrics} --best-factors {input.best_factors} "
        "{params.optional} --settings {params.settings:q} --out {output} 2> {log}"

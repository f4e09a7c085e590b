rule input_scores:
    input:
        model=f"{OUT}/model.json",
        logit_lens=f"{OUT}/layers/{{layer}}/logit_lens.parquet",
        activations=f"{OUT}/layers/{{layer}}/activations.parquet",
        # The corpus's frequent tokens give the chance level, when the run has a corpus
        # (mined examples or trained SAEs); else it is null.
        chunks=[f"{OUT}/corpus/chunks.parquet"] if USES_CORPUS else [],
    output:
        f"{OUT}/layers/{{layer}}/input_scores.parquet",
    log:
        f"{OUT}/logs/input_scores/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/input_scores/{{layer}}.tsv"
    priority: LIGHT_PRIORITY
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=2000,
    params:
        settings=section_settings("input_score"),
        optional=optional_inputs("chunks"),
    shell:
        "saesteer input-scores --model {input.model} --logit-lens {input.logit_lens} "
        "--activations {input.activations} {params.optional} "
        "--settings {params.settings:q} --out {output} 2> {log}"

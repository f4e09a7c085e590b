rule concepts:
    input:
        features=f"{OUT}/layers/{{layer}}/features.parquet",
        logit_lens=f"{OUT}/layers/{{layer}}/logit_lens.parquet",
        activations=f"{OUT}/layers/{{layer}}/activations.parquet",
    output:
        f"{OUT}/layers/{{layer}}/concepts.parquet",
    log:
        f"{OUT}/logs/concepts/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/concepts/{{layer}}.tsv"
    conda:
        "../envs/saesteer.yaml"
    resources:
        mem_mb=1000,
    params:
        settings=concept_settings("concepts"),
    shell:
        "saesteer concepts --layer {wildcards.layer} --features {input.features} "
        "--logit-lens {input.logit_lens} --activations {input.activations} "
        "--settings {params.settings:q} --out {output} 2> {log}"


rule concept_generations:
    input:
        model=f"{OUT}/model.json",
        sae=f"{OUT}/layers/{{layer}}/sae.json",
        concepts=f"{OUT}/layers/{{layer}}/concepts.parquet",
        activations=f"{OUT}/layers/{{layer}}/activations.parquet",
        instructions=concept_instruction_files,
    output:
        f"{OUT}/layers/{{layer}}/concept_generations.parquet",
    log:
        f"{OUT}/logs/concept_generations/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/concept_generations/{{layer}}.tsv"
    conda:
        "../envs/saesteer.yaml"
    threads: workflow.cores
    resources:
        gpu=model_gpus,
        mem_mb=model_mem(8000),
    params:
        settings=concept_settings("generations"),
        device=MODEL["device"],
    shell:
        "saesteer concept-generate --layer {wildcards.layer} --model {input.model} "
        "--sae {input.sae} --concepts {input.concepts} --activations {input.activations} "
        "--settings {params.settings:q} --device {params.device} --out {output} 2> {log}"


rule concept_ratings:
    input:
        model=f"{OUT}/model.json",
        generations=f"{OUT}/layers/{{layer}}/concept_generations.parquet",
        concepts=f"{OUT}/layers/{{layer}}/concepts.parquet",
        rubrics=concept_rubric_files,
    output:
        f"{OUT}/layers/{{layer}}/concept_ratings.parquet",
    log:
        f"{OUT}/logs/concept_ratings/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/concept_ratings/{{layer}}.tsv"
    conda:
        "../envs/saesteer.yaml"
    threads: workflow.cores
    resources:
        gpu=model_gpus if CONCEPTS["judge"]["kind"] == "proxy" else 0,
        mem_mb=model_mem(4000),
    params:
        settings=concept_settings("ratings"),
        device=MODEL["device"],
    shell:
        "saesteer concept-judge --model {input.model} --generations {input.generations} "
        "--concepts {input.concepts} --settings {params.settings:q} "
        "--device {params.device} --out {output} 2> {log}"


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
        data_dir=RELEASED_DATA,
        model_dir=CONCEPTS["released"]["model_dir"],
        n_select=CONCEPTS["n_select"],
    shell:
        "saesteer import-released-concepts {params.data_dir:q} {output} "
        "--model-dir {params.model_dir:q} --n-select {params.n_select} 2> {log}"


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
        settings=concept_settings("table"),
        sources=concept_table_sources,
    shell:
        "saesteer concept-table {params.sources} "
        "--output-scores {input.output_scores} --settings {params.settings:q} "
        "--scores-out {output.scores} --table-out {output.table} "
        "--html-out {output.html} 2> {log}"

include: "helpers/concept_generations.smk"


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
        local_gpu=model_local_gpus,
        mem_mb=model_mem(8000),
    params:
        settings=concept_settings("concept_generations"),
        device=MODEL["device"],
    shell:
        "saesteer concept-generations --layer {wildcards.layer} --model {input.model} "
        "--sae {input.sae} --concepts {input.concepts} --activations {input.activations} "
        "--settings {params.settings:q} --device {params.device} --out {output} 2> {log}"

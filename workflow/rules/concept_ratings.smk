include: "helpers/concept_ratings.smk"


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
        local_gpu=model_local_gpus if CONCEPTS["judge"]["kind"] == "proxy" else 0,
        mem_mb=model_mem(4000),
    params:
        settings=concept_settings("concept_ratings"),
        device=MODEL["device"],
    shell:
        "saesteer concept-ratings --model {input.model} --generations {input.generations} "
        "--concepts {input.concepts} --settings {params.settings:q} "
        "--resources resources --device {params.device} --out {output} 2> {log}"

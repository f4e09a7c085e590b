include: "helpers/gen_metrics.smk"


rule gen_metrics:
    input:
        model=f"{OUT}/model.json",
        generations=f"{OUT}/layers/{{layer}}/generations.parquet",
        logit_lens=f"{OUT}/layers/{{layer}}/logit_lens.parquet",
    output:
        f"{OUT}/layers/{{layer}}/gen_metrics.parquet",
    log:
        f"{OUT}/logs/gen_metrics/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/gen_metrics/{{layer}}.tsv"
    conda:
        "../envs/saesteer.yaml"
    threads: workflow.cores
    resources:
        gpu=model_gpus,
        local_gpu=model_local_gpus,
        mem_mb=model_mem(7000) + EVALUATOR_MB,
    params:
        settings=section_settings("gen_metrics"),
        device=MODEL["device"],
    shell:
        "saesteer gen-metrics --model {input.model} --generations {input.generations} "
        "--logit-lens {input.logit_lens} --settings {params.settings:q} "
        "--resources resources --device {params.device} --out {output} 2> {log}"

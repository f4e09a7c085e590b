# A separate perplexity evaluator (gen_metrics.evaluator) is counted as another 20 GB in
# 16 bits, 40 GB in float32 (the paper's Gemma-2-9B evaluator is 37 GB in float32).
EVALUATOR_MB = (
    (40000 if MODEL["dtype"] == "float32" else 20000)
    if config["gen_metrics"]["evaluator"]
    else 0
)


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

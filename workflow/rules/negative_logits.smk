rule negative_logits:
    input:
        model=f"{OUT}/model.json",
        sae=f"{OUT}/layers/{{layer}}/sae.json",
        features=f"{OUT}/layers/{{layer}}/features.parquet",
    output:
        f"{OUT}/layers/{{layer}}/negative_logits.parquet",
    log:
        f"{OUT}/logs/negative_logits/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/negative_logits/{{layer}}.tsv"
    priority: LIGHT_PRIORITY
    conda:
        "../envs/saesteer.yaml"
    threads: LIGHT_THREADS
    resources:
        gpu=model_gpus,
        local_gpu=model_local_gpus,
        mem_mb=model_mem(3000),
    params:
        settings=section_settings("logit_lens"),
        device=MODEL["device"],
    shell:
        "saesteer negative-logits --model {input.model} --sae {input.sae} "
        "--features {input.features} --settings {params.settings:q} "
        "--device {params.device} --out {output} 2> {log}"

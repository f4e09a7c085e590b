rule sae_metrics:
    input:
        model=f"{OUT}/model.json",
        sae=f"{OUT}/layers/{{layer}}/sae.json",
        chunks=f"{OUT}/corpus/chunks.parquet",
        residuals=ancient(residual_file("{layer}")),
    output:
        f"{OUT}/layers/{{layer}}/sae_metrics.parquet",
    log:
        f"{OUT}/logs/sae_metrics/{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/sae_metrics/{{layer}}.tsv"
    priority: LIGHT_PRIORITY
    conda:
        "../envs/saesteer.yaml"
    threads: LIGHT_THREADS
    resources:
        gpu=model_gpus,
        local_gpu=model_local_gpus,
        mem_mb=model_mem(3000),
    params:
        settings=section_settings("sae_metrics"),
        device=MODEL["device"],
    shell:
        "saesteer sae-metrics --model {input.model} --sae {input.sae} "
        "--chunks {input.chunks} --residuals {input.residuals} "
        "--settings {params.settings:q} --device {params.device} --out {output} 2> {log}"

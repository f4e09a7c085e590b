include: "helpers/sae_sweep.smk"


rule sae_sweep:
    input:
        unpack(sweep_inputs),
    output:
        directory(f"{OUT}/sweep/{{variant}}/layers/{{layer}}"),
    log:
        f"{OUT}/logs/sae_sweep/{{variant}}-{{layer}}.log",
    benchmark:
        f"{OUT}/benchmarks/sae_sweep/{{variant}}-{{layer}}.tsv"
    conda:
        "../envs/saesteer.yaml"
    threads: LIGHT_THREADS
    resources:
        gpu=model_gpus,
        local_gpu=model_local_gpus,
        mem_mb=model_mem(5000),
    params:
        settings=sweep_settings,
        device=MODEL["device"],
    shell:
        "saesteer sae-sweep --model {input.model} --chunks {input.chunks} "
        "--residuals {input.residuals} --sae-dir {input.sae_dir} --layer {wildcards.layer} "
        "--settings {params.settings:q} --device {params.device} --out {output} 2> {log}"

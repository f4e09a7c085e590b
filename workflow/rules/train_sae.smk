include: "helpers/train_sae.smk"


# The directory's key hashes every setting the training reads (config.trained_sae_dir), so
# the inputs' mtimes are not a reason to retrain: a rewritten model.json, chunks.parquet or
# residual cache with other content comes from other settings, hence another key and
# another directory.
rule train_sae:
    input:
        model=ancient(f"{OUT}/model.json"),
        chunks=ancient(f"{OUT}/corpus/chunks.parquet"),
        residuals=ancient(residual_file("{layer}")),
    output:
        # update(): Snakemake leaves an existing SAE in place when it reruns the job (new
        # code, --forcerun), and the job keeps it (train.train_sae).
        protected(update(directory(f"{OUT}/layers/{{layer}}/sae-{{key}}"))),
    log:
        f"{OUT}/logs/train_sae/{{layer}}-{{key}}.log",
    benchmark:
        f"{OUT}/benchmarks/train_sae/{{layer}}-{{key}}.tsv"
    conda:
        "../envs/saesteer.yaml"
    threads: workflow.cores
    resources:
        gpu=model_gpus,
        local_gpu=model_local_gpus,
        mem_mb=model_mem(7000),
    params:
        settings=train_settings,
        device=MODEL["device"],
    shell:
        "saesteer train-sae --model {input.model} --chunks {input.chunks} "
        "--residuals {input.residuals} --layer {wildcards.layer} "
        "--settings {params.settings:q} --device {params.device} --out {output} 2> {log}"

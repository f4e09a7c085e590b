def sweep_inputs(wildcards):
    sae = SWEEP_SAES[(wildcards.variant, int(wildcards.layer))]
    return {
        "model": f"{OUT}/model.json",
        "chunks": f"{OUT}/corpus/chunks.parquet",
        "residuals": ancient(residual_file(wildcards.layer)),
        "sae_dir": sae["path"],
    }


def sweep_settings(wildcards):
    """The variant's training settings and the run's own scoring sections, so a variant is
    scored exactly as the run's layers are; mining is the source (the cache is here)."""
    layer = layer_settings(config, wildcards.layer)
    sae = SWEEP_SAES[(wildcards.variant, int(wildcards.layer))]
    return canonical_json(
        {
            "train": sae["train"],
            "features": {
                "random": config["sae_sweep"]["features"],
                "seed": (
                    layer["features"].get("seed", 0)
                    if isinstance(layer["features"], dict)
                    else 0
                ),
            },
            "sae_metrics": config["sae_metrics"],
            "logit_lens": config["logit_lens"],
            "output_score": {**config["output_score"], "robustness_prompts": []},
            "activations": {
                "source": "mine",
                "n_examples": ACTIVATIONS["n_examples"],
                "mine": ACTIVATIONS["mine"],
            },
            "input_score": config["input_score"],
        }
    )


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

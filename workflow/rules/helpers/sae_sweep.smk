# What rule sae_sweep alone uses (its inputs, settings and sizes); its rule file includes
# this one, as the linter keeps functions apart from rules.
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

# What rule train_sae alone uses (its inputs, settings and sizes); its rule file includes
# this one, as the linter keeps functions apart from rules.
def train_settings(wildcards):
    sae = layer_settings(config, wildcards.layer)["sae"]
    path = f"{OUT}/layers/{wildcards.layer}/sae-{wildcards.key}"
    swept = [s for (_, l), s in SWEEP_SAES.items() if l == int(wildcards.layer)]
    for candidate in swept:
        if candidate["path"] == path:
            return canonical_json(candidate["train"])
    if sae["path"] != path:
        raise WorkflowError(
            f"layer {wildcards.layer}: sae-{wildcards.key} is not the SAE of this config's "
            f"training settings ({sae['path']})"
        )
    return canonical_json(sae.get("train", {}))

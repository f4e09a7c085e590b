# What rule sae alone uses (its inputs, settings and sizes); its rule file includes
# this one, as the linter keeps functions apart from rules.
from saesteer.saes import weights_stamp


def sae_settings(wildcards):
    """This layer's SAE settings only, so other layers' edits do not rerun it."""
    return canonical_json(layer_settings(config, wildcards.layer)["sae"])


def sae_files(wildcards):
    """The SAE's files are inputs, so replacing or retraining them reruns the layer."""
    sae = layer_settings(config, wildcards.layer)["sae"]
    if sae["source"] == "local":
        return [f"{sae['path']}/cfg.json", f"{sae['path']}/sae_weights.safetensors"]
    if sae["source"] == "train":
        return [sae["path"]]
    return []


def sae_weights_stamp(wildcards):
    """Size and mtime of a user's SAE weights, so a replaced file reruns the layer even
    when its mtime is older (cp -p, rsync -a, a re-download). A trained SAE has none: its
    directory is train_sae's output, whose mtime already reruns the layer, and a stamp
    read when the job is planned (before training) would be recorded stale and replan the
    layer on the next invocation."""
    sae = layer_settings(config, wildcards.layer)["sae"]
    return canonical_json(
        weights_stamp(sae["path"]) if sae["source"] == "local" else None
    )

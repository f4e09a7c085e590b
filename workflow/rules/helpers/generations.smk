# What rule generations alone uses (its inputs, settings and sizes); its rule file includes
# this one, as the linter keeps functions apart from rules.
from saesteer.config import without_later_defaults
from saesteer.prompts import resolve_prefixes
from saesteer.released import factor_file
from saesteer.sampling import SamplingSettings
from saesteer.settings import settings_fields

SAMPLED = GENERATION["source"] == "sample"
# The sampling settings' keys (`SamplingSettings`), passed only when sampling: tuning them
# does not import the released texts again.
SAMPLING_KEYS = [field.name for field in settings_fields(SamplingSettings)]
# Resolved here, once per run (the stage takes the list as it is): the list reaches the
# jobs' params, so an edited prefix file reruns the generations.
PREFIXES = resolve_prefixes(GENERATION["prefixes"], GENERATION["n_prefixes"])
# Keys the rule passes resolved (the layer's grid, the prefixes) or only when they are
# read (the released files).
RESOLVED_KEYS = ["factors", "prefixes", "n_prefixes", "released"]


def generation_settings(wildcards):
    """The `generation` section as the stage reads it: this layer's grid, the resolved
    prefixes; the released files only when read, the sampling settings only when sampled.
    """
    settings = {
        key: value
        for key, value in GENERATION.items()
        if key not in RESOLVED_KEYS and (SAMPLED or key not in SAMPLING_KEYS)
    }
    settings["factors"] = layer_settings(config, wildcards.layer)["factors"]
    settings["prefixes"] = PREFIXES
    if not SAMPLED:
        settings["released"] = GENERATION["released"]
    return canonical_json(without_later_defaults("generation", settings))


def generation_inputs(wildcards):
    layer = f"{OUT}/layers/{wildcards.layer}"
    inputs = {"model": f"{OUT}/model.json", "features": f"{layer}/features.parquet"}
    if GENERATION["output_strata"]:
        inputs["output_scores"] = f"{layer}/output_scores.parquet"
    if GENERATION["live_only"]:
        inputs["input_scores"] = f"{layer}/input_scores.parquet"
    if SAMPLED:
        inputs["sae"] = f"{layer}/sae.json"
    else:
        # The released files are inputs, so replacing them re-imports.
        inputs["released"] = [
            factor_file(GENERATION["released"]["files"], factor)
            for factor in layer_settings(config, wildcards.layer)["factors"]
        ]
    return inputs

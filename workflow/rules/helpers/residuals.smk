# What rule residuals alone uses (its inputs, settings and sizes); its rule file includes
# this one, as the linter keeps functions apart from rules.
from saesteer.residuals import ResidualSizes


def residual_sizes():
    """How many chunks of each split the cache holds: what its most demanding reader needs."""
    sizes = ResidualSizes.needed(
        CORPUS["context_size"],
        [
            layer_settings(config, layer)["sae"]["train"]["activation_tokens"]
            for layer in TRAINED_LAYERS
        ]
        + [sae["train"]["activation_tokens"] for sae in SWEEP_SAES.values()],
        [ACTIVATIONS["mine"]["max_tokens"]] if MINED else [],
        config["sae_metrics"]["max_tokens"] if TRAINED_LAYERS else None,
    )
    return sizes

# What rule features alone uses (its inputs, settings and sizes); its rule file includes
# this one, as the linter keeps functions apart from rules.
from saesteer.features import read_feature_file


def feature_settings(wildcards):
    """This layer's feature setting; a feature file is read so only this layer's entry counts."""
    spec = layer_settings(config, wildcards.layer)["features"]
    if isinstance(spec, dict) and "file" in spec:
        spec = read_feature_file(spec["file"], int(wildcards.layer))
    return canonical_json(spec)

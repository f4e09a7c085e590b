"""Per-layer feature selection: explicit ids, a seeded random sample, or the paper's JSON."""

from __future__ import annotations

import numpy as np
import polars as pl

from saesteer.config import ConfigError, check_features, read_feature_file

FEATURES_SCHEMA = {"layer": pl.Int32, "feature": pl.Int64}


def select_features(spec, layer: int, d_sae: int) -> list[int]:
    """The feature ids `spec` names for `layer`, validated against the SAE's width."""
    check_features(spec, layer, d_sae)
    if isinstance(spec, list):
        return list(spec)
    if "file" in spec:
        return read_feature_file(spec["file"], layer)
    rng = np.random.default_rng(spec.get("seed", 0))
    return sorted(int(i) for i in rng.choice(d_sae, size=spec["random"], replace=False))


def features_frame(layer: int, ids: list[int]) -> pl.DataFrame:
    if not ids:
        raise ConfigError(f"layers.{layer}.features: empty feature list")
    return pl.DataFrame({"layer": [layer] * len(ids), "feature": ids}, schema=FEATURES_SCHEMA)

"""Per-layer feature selection: explicit ids, a seeded random sample, or the paper's JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from saesteer.downloads import missing_file
from saesteer.errors import ConfigError
from saesteer.io import read_json_object

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


def check_features(spec: Any, layer: int, d_sae: int | None) -> None:
    """Catch bad feature ids early; `d_sae` is None when unknown before the SAE loads."""
    where = f"layers.{layer}.features"
    if isinstance(spec, dict) and "file" in spec:
        ids = read_feature_file(spec["file"], layer)
        where += f" (file {spec['file']})"
    elif isinstance(spec, dict):
        if d_sae is not None and spec["random"] > d_sae:
            raise ConfigError(f"{where}.random: {spec['random']} > d_sae={d_sae}")
        return
    else:
        ids = spec
    if d_sae is not None:
        bad = [i for i in ids if i >= d_sae]
        if bad:
            raise ConfigError(f"{where}: feature ids {bad[:5]} out of range, d_sae={d_sae}")


def read_feature_file(path: str | Path, layer: int) -> list[int]:
    """Read the paper's feature-list JSON, `{"<layer>": [index, ...]}`, for one layer."""
    where = f"features file {path}"
    if not Path(path).is_file():
        raise ConfigError(missing_file("features.file", path))
    data = read_json_object(path, where, '{"<layer>": [ids]}')
    if str(layer) not in data:
        raise ConfigError(f"{where}: no entry for layer {layer} (has {sorted(data)[:10]})")
    ids = data[str(layer)]
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids)
    ):
        raise ConfigError(f'{where}: entry "{layer}" must be a non-empty list of ids >= 0')
    if len(set(ids)) != len(ids):
        raise ConfigError(f'{where}: entry "{layer}" has duplicate ids')
    return ids

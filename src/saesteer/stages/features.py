"""Stage `features`: one layer's feature list (explicit ids, a seeded random sample, or the
paper's JSON)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from saesteer.features import FEATURES_SCHEMA, features_frame, select_features
from saesteer.io import read_json, write_parquet

log = logging.getLogger(__name__)


def run(
    *,
    layer: int,
    sae: Annotated[Path, "the layer's sae.json (its d_sae)"],
    settings: Annotated[list | dict, "the layer's `features` setting"],
    out: Annotated[Path, "features.parquet"],
) -> None:
    ids = select_features(settings, layer, read_json(sae)["d_sae"])
    write_parquet(features_frame(layer, ids), out, FEATURES_SCHEMA)
    log.info("layer %d: %d features", layer, len(ids))

"""Stage `aggregate`: every layer's Parquet joined into one row per feature
(features.parquet) and a per-layer summary (summary.parquet)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

from saesteer.aggregate.join import FEATURE_TABLE_SCHEMA, feature_table
from saesteer.aggregate.summary import SUMMARY_SCHEMA, summary_table
from saesteer.artifacts import read_artifact
from saesteer.io import read_json, write_parquet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AggregateSettings:
    SECTIONS: ClassVar = ("generation",)
    output_strata: tuple[float, ...]  # the cutpoints the steered features were drawn by


def _by_layer(kinds: dict[str, list[Path]]) -> dict[int, dict[str, Path]]:
    """{layer: {kind: file}}, each file's layer read from its own rows."""
    layers: dict[int, dict[str, Path]] = defaultdict(dict)
    for kind, paths in kinds.items():
        for path in paths:
            rows = read_artifact(path, columns=["layer"]).head(1)
            if rows.height:  # an empty file adds no columns
                layers[int(rows["layer"][0])][kind] = path
    return layers


def run(
    *,
    model: Annotated[Path, "model.json (its number of layers)"],
    features: Annotated[list[Path], "every layer's features.parquet"],
    logit_lens: Annotated[list[Path], "every layer's logit_lens.parquet"],
    input_scores: Annotated[list[Path], "every layer's input_scores.parquet"],
    densities: Annotated[list[Path], "every layer's densities.parquet"] = (),
    output_scores: Annotated[list[Path], "every layer's output_scores.parquet"],
    best_factors: Annotated[list[Path], "every layer's best_factors.parquet"],
    sae_metrics: Annotated[list[Path], "the trained layers' sae_metrics.parquet"] = (),
    settings: AggregateSettings,
    out_features: Annotated[Path, "features.parquet"],
    out_summary: Annotated[Path, "summary.parquet"],
) -> None:
    kinds = {
        "features": features,
        "logit_lens": logit_lens,
        "input_scores": input_scores,
        "densities": list(densities),
        "output_scores": output_scores,
        "best_factors": best_factors,
        "sae_metrics": list(sae_metrics),
    }
    layers = _by_layer(kinds)
    for layer, files in sorted(layers.items()):
        absent = [kind for kind in kinds if kind not in files]
        if absent:
            log.info("layer %d: no %s (their columns stay null)", layer, ", ".join(absent))
    table = feature_table(layers, read_json(model)["n_layers"], settings.output_strata)
    write_parquet(table, out_features, FEATURE_TABLE_SCHEMA)
    write_parquet(summary_table(table), out_summary, SUMMARY_SCHEMA)
    log.info("%d features of %d layers", table.height, len(layers))

"""Stage `best_factors`: each steered feature's best factor (GenSuccess@20 against
perplexity), with the paper's choice beside it when its JSON is given."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from saesteer.artifacts import read_artifact
from saesteer.best_factor import BEST_FACTORS_SCHEMA, BestFactorSettings, choose_best_factors
from saesteer.io import write_parquet
from saesteer.released import read_released_best_factors

log = logging.getLogger(__name__)


def run(
    *,
    gen_metrics: Annotated[Path, "the layer's gen_metrics.parquet"],
    released: Annotated[Path | None, "the paper's best-factor JSON (best_factor.released)"] = None,
    settings: BestFactorSettings,
    out: Annotated[Path, "best_factors.parquet"],
) -> None:
    metrics = read_artifact(gen_metrics)
    layer = metrics["layer"][0]
    paper = read_released_best_factors(released, layer) if released else None
    best = choose_best_factors(metrics, settings, paper)
    write_parquet(best, out, BEST_FACTORS_SCHEMA)
    counts = best["best_factor"].value_counts().sort("best_factor")
    log.info(
        "layer %d: best factors %s (%d features without a candidate)",
        layer,
        dict(counts.drop_nulls().iter_rows()),
        best["best_factor"].null_count(),
    )

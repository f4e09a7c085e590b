"""Stage `plots`: the paper's figures from the aggregated tables, one PNG per plot."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from saesteer.artifacts import read_artifact
from saesteer.plots import PLOTS, write_plots
from saesteer.stats import BootstrapSettings

log = logging.getLogger(__name__)


def run(
    *,
    features: Annotated[Path, "the run's features.parquet"],
    summary: Annotated[Path, "the run's summary.parquet"],
    settings: BootstrapSettings,
    out: Annotated[list[Path], f"PNG files, each named by its plot: {', '.join(PLOTS)}"],
) -> None:
    write_plots(read_artifact(features), read_artifact(summary), out, settings)
    log.info("wrote %s", ", ".join(p.name for p in out))

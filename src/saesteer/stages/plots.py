"""Stage `plots`: the paper's figures from the aggregated tables, one PNG per plot, and
one page of every figure with its caption under it (`figures.html`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from saesteer.artifacts import read_artifact
from saesteer.errors import ConfigError
from saesteer.io import atomic_path
from saesteer.plots import PLOTS, write_plots
from saesteer.report_pages import figures_html
from saesteer.stats import BootstrapSettings

log = logging.getLogger(__name__)


def run(
    *,
    run_name: Annotated[str, "the run's name (the figures page's title)"] = "",
    features: Annotated[Path, "the run's features.parquet"],
    summary: Annotated[Path, "the run's summary.parquet"],
    captions: Annotated[list[Path], "each plot's report caption (.rst), in --out's order"] = (),
    settings: BootstrapSettings,
    out: Annotated[list[Path], f"PNG files, each named by its plot: {', '.join(PLOTS)}"],
    out_figures: Annotated[Path | None, "figures.html: every plot, its caption under it"] = None,
) -> None:
    scored = read_artifact(features)
    write_plots(scored, read_artifact(summary), out, settings)
    log.info("wrote %s", ", ".join(p.name for p in out))
    if out_figures is None:
        return
    if [c.stem for c in captions] != [p.stem for p in out]:
        raise ConfigError(f"--captions {[str(c) for c in captions]}: one per plot of --out")
    layers = sorted(scored["layer"].unique().to_list())
    pairs = [
        (png, caption.read_text(encoding="utf-8"))
        for png, caption in zip(out, captions, strict=True)
    ]
    with atomic_path(out_figures) as tmp:
        tmp.write_text(figures_html(pairs, run_name, layers), encoding="utf-8")
    log.info("wrote %s", out_figures)

"""Stage `sae_sweep_table`: the SAE sweep's table (sae_sweep.parquet: each variant's
quality and roles per layer, and whether it passes the gates) and its plot."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from saesteer.io import atomic_path, write_parquet
from saesteer.settings import settings_for
from saesteer.stats import BootstrapSettings
from saesteer.sweep import SWEEP_SCHEMA, Gates, plot_sweep, sweep_table

log = logging.getLogger(__name__)


def run(
    *,
    folders: Annotated[list[Path], "every sweep/<variant>/layers/<L> folder"],
    settings: Annotated[dict, "JSON: sae_sweep.gates (gates), findings.bootstrap and seed"],
    out: Annotated[Path, "sae_sweep.parquet"],
    out_plot: Annotated[Path, "sae_sweep.png"],
) -> None:
    by_variant: dict[str, list[Path]] = {}
    for folder in folders:
        by_variant.setdefault(folder.parents[1].name, []).append(folder)
    bootstrap = BootstrapSettings(settings["bootstrap"], settings["seed"], live_only=True)
    table = sweep_table(by_variant, settings_for(Gates, settings["gates"]), bootstrap)
    write_parquet(table, out, SWEEP_SCHEMA)
    with atomic_path(out_plot) as tmp:
        plot_sweep(table, tmp)
    for row in table.iter_rows(named=True):
        log.info("%s", row)

"""Stage `explorer_index`: the feature explorer's front page (`explorer/index.html`), one
sortable, filterable table of every feature of the run, each linked to its page."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import polars as pl

from saesteer.artifacts import read_artifact
from saesteer.errors import ArtifactError
from saesteer.explorer.index import index_rows, scatter
from saesteer.explorer.render import environment
from saesteer.io import atomic_path

log = logging.getLogger(__name__)


def run(
    *,
    run_name: Annotated[str, "the run's name (the page's title)"],
    features: Annotated[Path, "the run's features.parquet"],
    concepts: Annotated[list[Path], "each concept layer's concepts.parquet (descriptions)"] = (),
    pages: Annotated[
        list[Path], "each layer's page folder, layers/<layer> (checked: a page per feature)"
    ],
    out: Annotated[Path, "explorer/index.html"],
) -> None:
    table = read_artifact(features)
    descriptions = pl.concat([read_artifact(p) for p in concepts]) if concepts else None
    rows = index_rows(table, descriptions)
    folders = {int(folder.name): folder for folder in pages}
    missing = [
        r["href"]
        for r in rows
        if r["layer"] not in folders or not (folders[r["layer"]] / f"{r['feature']}.html").is_file()
    ]
    if missing:
        raise ArtifactError(f"{len(missing)} feature pages missing, e.g. {missing[:3]}")
    page = environment().get_template("index.html.j2")
    layers = sorted({r["layer"] for r in rows})
    with atomic_path(out) as tmp:
        tmp.write_text(
            page.render(run=run_name, rows=rows, layers=layers, scatter=scatter(rows)),
            encoding="utf-8",
        )
    log.info("explorer index: %d features over %d layers", len(rows), len(layers))

"""Stage `explorer_pages`: one layer's feature pages for the report's feature explorer
(`explorer/layers/<layer>/<feature>.html`), from the layer's Parquet artifacts."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

from saesteer.artifacts import read_artifact
from saesteer.errors import ConfigError
from saesteer.explorer.pages import ExplorerSettings, LayerTables, feature_pages
from saesteer.explorer.render import write_pages
from saesteer.explorer.tokens import token_decoder
from saesteer.io import atomic_dir

log = logging.getLogger(__name__)


def run(
    *,
    run_name: Annotated[str, "the run's name (in each page's title)"],
    model: Annotated[Path, "model.json (its tokenizer shows tokens as text)"],
    features: Annotated[Path, "the layer's features.parquet"],
    logit_lens: Annotated[Path, "the layer's logit_lens.parquet"],
    negative_logits: Annotated[Path | None, "the layer's negative_logits.parquet"] = None,
    input_scores: Annotated[Path, "the layer's input_scores.parquet"],
    densities: Annotated[Path | None, "the layer's densities.parquet"] = None,
    output_scores: Annotated[Path, "the layer's output_scores.parquet"],
    activations: Annotated[Path, "the layer's activations.parquet"],
    generations: Annotated[Path, "the layer's generations.parquet"],
    gen_metrics: Annotated[Path, "the layer's gen_metrics.parquet"],
    best_factors: Annotated[Path, "the layer's best_factors.parquet"],
    concepts: Annotated[Path | None, "the layer's concepts.parquet, if a concept layer"] = None,
    concept_ratings: Annotated[Path | None, "and its concept_ratings.parquet"] = None,
    settings: ExplorerSettings,
    out: Annotated[Path, "the layer's page folder: <explorer>/layers/<layer>"],
) -> None:
    started = time.perf_counter()
    chosen = read_artifact(features)
    layers = chosen["layer"].unique().to_list()
    if layers and (len(layers) != 1 or out.name != str(layers[0])):
        raise ConfigError(f"{features} holds layers {layers}: its pages go to layers/<layer>")
    layer = int(out.name)
    tables = LayerTables(
        features=chosen,
        logit_lens=read_artifact(logit_lens),
        negative_logits=read_artifact(negative_logits) if negative_logits else None,
        input_scores=read_artifact(input_scores),
        output_scores=read_artifact(output_scores),
        activations=read_artifact(activations),
        generations=read_artifact(generations),
        gen_metrics=read_artifact(gen_metrics),
        best_factors=read_artifact(best_factors),
        densities=read_artifact(densities) if densities else None,
        concepts=read_artifact(concepts) if concepts else None,
        concept_ratings=read_artifact(concept_ratings) if concept_ratings else None,
    )
    decoder = token_decoder(model)
    with atomic_dir(out) as folder:
        pages = feature_pages(layer, tables, decoder, settings, run_name)
        written = write_pages(pages, "feature.html.j2", folder)
    size = sum(p.stat().st_size for p in out.iterdir())
    log.info(
        "layer %d: %d feature pages, %.1f kB in all, in %.1f s",
        layer,
        written,
        size / 1e3,
        time.perf_counter() - started,
    )

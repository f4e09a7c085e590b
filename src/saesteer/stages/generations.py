"""Stage `generations`: steered continuations over one layer's factor grid (every steered
feature x factor x prefix), sampled, or read from the paper's released files."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

import polars as pl

from saesteer.artifacts import read_artifact
from saesteer.errors import ConfigError
from saesteer.generation import generate_grid
from saesteer.generations_table import GENERATIONS_SCHEMA
from saesteer.io import write_parquet
from saesteer.models import load_tokenizer
from saesteer.prompts import resolved_prefixes
from saesteer.released import read_released_generations
from saesteer.saes import load_layer
from saesteer.sampling import SamplingSettings
from saesteer.steer_selection import live_features, select_steered

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationSettings:
    """The `generation` section, with the layer's factors and the prefixes the workflow
    resolved (`prompts.resolve_prefixes`, once); the sampling settings are read only when
    sampling, the released files only when reading them."""

    SECTIONS: ClassVar = ("generation",)
    source: str  # sample | released
    factors: tuple[float, ...]
    prefixes: tuple[str, ...]
    max_features: int | None
    output_strata: tuple[float, ...]
    allocation: str  # proportional | equal (steered features per output-score stratum)
    live_only: bool  # steer only features with an input score
    sampling: SamplingSettings | None = None  # read when sampling
    released: dict | None = None  # read when reading the released files


def run(
    *,
    layer: int,
    model: Annotated[Path, "model.json"],
    sae: Annotated[Path | None, "the layer's sae.json (source sample)"] = None,
    features: Annotated[Path, "the layer's features.parquet"],
    output_scores: Annotated[
        Path | None, "the layer's output_scores.parquet (generation.output_strata)"
    ] = None,
    input_scores: Annotated[
        Path | None, "the layer's input_scores.parquet (generation.live_only)"
    ] = None,
    settings: GenerationSettings,
    device: str = "auto",
    out: Annotated[Path, "generations.parquet"],
) -> None:
    candidates = read_artifact(features)["feature"].to_list()
    if settings.live_only:
        if input_scores is None:
            raise ConfigError("generation.live_only needs the layer's input_scores.parquet")
        candidates = live_features(candidates, read_artifact(input_scores))
        log.info("layer %d: %d live features to steer from", layer, len(candidates))
    scores = None
    if output_scores:
        frame = read_artifact(output_scores)
        scores = dict(zip(frame["feature"].to_list(), frame["output_score"].to_list(), strict=True))
    steered = select_steered(
        candidates,
        settings.max_features,
        scores,
        list(settings.output_strata),
        settings.allocation,
    )
    log.info("steering features %s", steered)
    factors = list(settings.factors)
    prefixes = resolved_prefixes(settings.prefixes)
    if settings.source == "released":
        template = settings.released["files"]
        frame = read_released_generations(
            template, layer, steered, factors, prefixes, load_tokenizer(model)
        )
    else:
        target = load_layer(model, sae, device)
        frame = generate_grid(target, steered, factors, prefixes, settings.sampling)
    write_parquet(frame, out, GENERATIONS_SCHEMA)
    stopped = frame.group_by("factor").agg(pl.col("n_tokens").mean()).sort("factor")
    log.info(
        "layer %d: %d texts (%d features x %d factors x %d prefixes, %s); mean tokens by factor %s",
        layer,
        frame.height,
        len(steered),
        len(factors),
        len(prefixes),
        settings.source,
        dict(zip(stopped["factor"], stopped["n_tokens"].round(1), strict=True)),
    )

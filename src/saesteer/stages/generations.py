"""Stage `generations`: steered continuations over one layer's factor grid (every steered
feature x factor x prefix), sampled, or read from the paper's released files."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

import polars as pl

from saesteer.artifacts import read_artifact
from saesteer.generation import SamplingSettings, generate_grid
from saesteer.generations_table import GENERATIONS_SCHEMA
from saesteer.io import write_parquet
from saesteer.models import load_tokenizer
from saesteer.prompts import resolve_prefixes
from saesteer.released import read_released_generations
from saesteer.saes import load_layer
from saesteer.steered_sample import live_features, select_steered

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationSettings:
    """The `generation` section, with the layer's factors (the workflow resolves the
    prefixes and passes the sampling settings only when sampling)."""

    SECTIONS: ClassVar = ("generation",)
    source: str  # sample | released
    factors: tuple[float, ...]
    prefixes: tuple[str, ...] | str | dict
    n_prefixes: int | None
    max_features: int | None
    output_strata: tuple[float, ...]
    allocation: str  # proportional | equal (steered features per output-score stratum)
    live_only: bool  # steer only features with an input score
    seed: int
    released: dict
    temperature: float
    top_k: int | None
    max_new_tokens: int
    stop: str | None
    batch_size: int

    @property
    def sampling(self) -> SamplingSettings:
        return SamplingSettings(
            self.temperature, self.top_k, self.max_new_tokens, self.stop, self.batch_size
        )


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
            raise ValueError("generation.live_only needs the layer's input_scores.parquet")
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
    prefixes = resolve_prefixes(settings.prefixes, settings.n_prefixes)
    if settings.source == "released":
        template = settings.released["files"]
        frame = read_released_generations(
            template, layer, steered, factors, prefixes, load_tokenizer(model)
        )
    else:
        lm, tokenizer, layer_sae, _ = load_layer(model, sae, device)
        frame = generate_grid(
            lm,
            tokenizer,
            layer_sae,
            layer,
            steered,
            factors,
            prefixes,
            settings.seed,
            settings.sampling,
        )
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

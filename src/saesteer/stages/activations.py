"""Stage `activations`: each feature's top activating examples, from one of three sources
(a registry): mined locally from the cached residuals, Neuronpedia's API, or Neuronpedia's
bulk export files; and each feature's activation density (the share of tokens it fires
on: counted over the mined tokens, or Neuronpedia's `frac_nonzero`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

import polars as pl
import torch

from saesteer.activations import (
    ACTIVATIONS_SCHEMA,
    Example,
    activations_frame,
    export_files,
    import_bulk_export,
    strongest_first,
)
from saesteer.artifacts import read_artifact
from saesteer.config import with_layer
from saesteer.corpus import read_chunks
from saesteer.errors import ConfigError
from saesteer.io import write_parquet
from saesteer.mining import (
    HISTOGRAM_EDGES,
    MiningSettings,
    mine_top_examples,
    top_examples_by_feature,
)
from saesteer.neuronpedia import NeuronpediaSettings, cached_density, fetch_features
from saesteer.residuals import read_residuals
from saesteer.saes import load_layer_sae
from saesteer.settings import settings_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActivationSettings:
    """The workflow passes the chosen source's section only (tuning another reruns nothing);
    the others keep their defaults, unread."""

    SECTIONS: ClassVar = ("activations",)
    source: str  # mine | neuronpedia | bulk
    n_examples: int
    mine: dict | None = None
    neuronpedia: dict | None = None
    bulk: dict | None = None


DENSITIES_SCHEMA = {
    "layer": pl.Int32,
    "feature": pl.Int64,
    "density": pl.Float64,  # share of tokens the feature fires on; null when unknown
    "density_tokens": pl.Int64,  # tokens it was counted over (null: the source's figure)
    "density_source": pl.Utf8,  # mined | neuronpedia | none
    # positive activations per bin of `histogram_edges` (null: the source gives none)
    "histogram": pl.List(pl.Int64),
    "histogram_edges": pl.List(pl.Float64),
}


@dataclass(frozen=True)
class Found:
    examples: dict[int, list[Example]]
    density: dict[int, float | None]
    density_tokens: int | None
    density_source: str
    histogram: dict[int, list[int]] | None = None


@dataclass(frozen=True)
class Inputs:
    layer: int
    features: list[int]
    model: Path | None
    sae: Path | None
    chunks: Path | None
    residuals: Path | None
    device: str


def _mined(inputs: Inputs, settings: ActivationSettings) -> Found:
    mining = settings_for(MiningSettings, {**settings.mine, "n_examples": settings.n_examples})
    if not (inputs.model and inputs.sae and inputs.chunks and inputs.residuals):
        raise ConfigError("activations.source mine: needs --model, --sae, --chunks and --residuals")
    tokenizer, sae, layer = load_layer_sae(inputs.model, inputs.sae, inputs.device)
    chunks = read_chunks(inputs.chunks, "train")
    if chunks.size == 0:
        raise ConfigError(f"activations.source mine: {inputs.chunks} has no train chunks")
    if mining.max_tokens is not None:
        chunks = chunks[: max(1, mining.max_tokens // chunks.shape[1])]
    residuals = read_residuals(inputs.residuals, "train", layer, len(chunks))
    top = mine_top_examples(
        residuals,
        sae,
        torch.from_numpy(chunks),
        inputs.features,
        tokenizer.all_special_ids,
        mining,
        desc=f"mining layer {layer}",
    )
    examples = top_examples_by_feature(top, inputs.features, tokenizer)
    density = dict(zip(inputs.features, top.density(), strict=True))
    histogram = dict(zip(inputs.features, top.histogram.tolist(), strict=True))
    return Found(examples, density, top.n_tokens, "mined", histogram)


def _neuronpedia(inputs: Inputs, settings: ActivationSettings) -> Found:
    api = settings_for(NeuronpediaSettings, settings.neuronpedia)
    examples = fetch_features(api, inputs.layer, inputs.features)
    density = {f: cached_density(api, inputs.layer, f) for f in inputs.features}
    examples = {f: strongest_first(e, settings.n_examples) for f, e in examples.items()}
    return Found(examples, density, None, "neuronpedia")


def _bulk(inputs: Inputs, settings: ActivationSettings) -> Found:
    files = export_files(settings.bulk["files"], inputs.layer)
    source_id = with_layer(settings.bulk["source"], inputs.layer, "activations.bulk.source")
    examples = import_bulk_export(files, source_id, inputs.features, settings.n_examples)
    # Activation exports hold examples, not how often a feature fires.
    return Found(examples, dict.fromkeys(inputs.features), None, "none")


SOURCES: dict[str, Callable[[Inputs, ActivationSettings], Found]] = {
    "mine": _mined,
    "neuronpedia": _neuronpedia,
    "bulk": _bulk,
}


def run(
    *,
    layer: int,
    features: Annotated[Path, "the layer's features.parquet"],
    settings: ActivationSettings,
    model: Annotated[Path | None, "model.json (source mine)"] = None,
    sae: Annotated[Path | None, "the layer's sae.json (source mine)"] = None,
    chunks: Annotated[Path | None, "chunks.parquet (source mine)"] = None,
    residuals: Annotated[Path | None, "the layer's residual cache (source mine)"] = None,
    device: str = "auto",
    out: Annotated[Path, "activations.parquet"],
    out_densities: Annotated[Path, "densities.parquet"],
) -> None:
    ids = read_artifact(features)["feature"].to_list()
    inputs = Inputs(layer, ids, model, sae, chunks, residuals, device)
    found = SOURCES[settings.source](inputs, settings)
    examples = found.examples
    frame = activations_frame(layer, examples)
    densities = pl.DataFrame(
        {
            "layer": layer,
            "feature": ids,
            "density": [found.density[f] for f in ids],
            "density_tokens": found.density_tokens,
            "density_source": found.density_source,
            "histogram": [(found.histogram or {}).get(f) for f in ids],
            "histogram_edges": [HISTOGRAM_EDGES if found.histogram else None] * len(ids),
        },
        schema=DENSITIES_SCHEMA,
    )
    write_parquet(frame, out, ACTIVATIONS_SCHEMA)
    write_parquet(densities, out_densities, DENSITIES_SCHEMA)
    counts = sorted(len(e) for e in examples.values())
    log.info(
        "layer %d: %d examples of %d features from %s (%d features without any, "
        "median %d examples per feature)",
        layer,
        frame.height,
        len(ids),
        settings.source,
        counts.count(0),
        counts[len(counts) // 2],
    )
    known = densities["density"].drop_nulls()
    if known.len():
        log.info(
            "layer %d: activation density (%s) median %.4g, %d features fire on no token",
            layer,
            found.density_source,
            known.median(),
            (known == 0).sum(),
        )

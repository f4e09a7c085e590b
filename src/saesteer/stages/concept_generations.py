"""Stage `concept_generations`: answers to each concept's instructions, steered by its SAE
feature and by its DiffMean direction over the factor grid, and prompted with the concept
(the three methods of the paper's Table 1)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

import polars as pl

from saesteer.artifacts import read_artifact
from saesteer.concepts.answers import CONCEPT_GENERATIONS_SCHEMA, generate_concepts
from saesteer.concepts.diffmean import diffmean_cosines, diffmean_directions, example_token_ids
from saesteer.concepts.instructions import concept_instructions
from saesteer.io import write_parquet
from saesteer.saes import load_layer
from saesteer.sampling import SamplingSettings
from saesteer.steering import steering_directions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConceptGenerationSettings:
    SECTIONS: ClassVar = ("concepts",)
    instructions: str | tuple | dict
    n_instructions: int
    n_select: int
    factors: tuple[float, ...]
    protocol: str  # paper | chat (its sampling sets where answers stop)
    diffmean_examples: int
    # stop is not a concepts key: the protocol sets it (`answers.protocol_sampling`)
    sampling: SamplingSettings


def run(
    *,
    layer: int,
    model: Annotated[Path, "model.json"],
    sae: Annotated[Path, "the layer's sae.json"],
    concepts: Annotated[Path, "the layer's concepts.parquet"],
    activations: Annotated[Path, "the layer's activations.parquet (DiffMean's texts)"],
    settings: ConceptGenerationSettings,
    device: str = "auto",
    out: Annotated[Path, "concept_generations.parquet"],
) -> None:
    table = read_artifact(concepts)
    features = table["feature"].to_list()
    instructions = concept_instructions(
        settings.instructions, layer, features, settings.n_instructions, settings.sampling.seed
    )
    target = load_layer(model, sae, device)
    sae_rows = steering_directions(target.sae, features)
    top = (
        read_artifact(activations)
        .filter(pl.col("feature").is_in(features))
        .sort("feature", "example")
        .group_by("feature", maintain_order=True)
        .head(settings.diffmean_examples)
    )
    diffmean = diffmean_directions(
        target.model,
        target.tokenizer,
        layer,
        example_token_ids(top, target.tokenizer),
        features,
        sae_rows.norm(dim=-1),
    )
    sae_by_feature = dict(zip(features, sae_rows, strict=True))
    log.info(
        "layer %d: cosine(DiffMean, SAE direction) by feature %s",
        layer,
        diffmean_cosines(sae_by_feature, diffmean),
    )
    frame = generate_concepts(
        target,
        table,
        instructions,
        list(settings.factors),
        {"sae": sae_by_feature, "diffmean": diffmean},
        settings.n_select,
        settings.sampling,
        protocol=settings.protocol,
    )
    write_parquet(frame, out, CONCEPT_GENERATIONS_SCHEMA)
    lengths = (
        frame.group_by("method", "factor").agg(pl.col("n_tokens").mean()).sort("method", "factor")
    )
    log.info("layer %d: %d answers; mean tokens %s", layer, frame.height, lengths.rows())

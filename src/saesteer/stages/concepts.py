"""Stage `concepts`: one layer's concepts for concept steering, the first features of its
list, each with a description (Neuronpedia's explanation, or derived from its logit lens
and top activations)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

from saesteer.artifacts import read_artifact
from saesteer.concepts.descriptions import CONCEPTS_SCHEMA, concept_list
from saesteer.io import write_parquet
from saesteer.neuronpedia import NeuronpediaSettings, feature_explanations
from saesteer.settings import settings_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConceptListSettings:
    """`concepts.description` resolved by the workflow: neuronpedia or derived."""

    SECTIONS: ClassVar = ("concepts",)
    max_concepts: int | None
    description: str
    neuronpedia: dict | None  # activations.neuronpedia, for its explanations


def run(
    *,
    layer: int,
    features: Annotated[Path, "the layer's features.parquet"],
    logit_lens: Annotated[Path, "the layer's logit_lens.parquet"],
    activations: Annotated[Path, "the layer's activations.parquet"],
    settings: ConceptListSettings,
    out: Annotated[Path, "concepts.parquet"],
) -> None:
    ids = read_artifact(features)["feature"].to_list()[: settings.max_concepts]
    explanations = {}
    if settings.description == "neuronpedia":
        api = settings_for(NeuronpediaSettings, settings.neuronpedia)
        explanations = feature_explanations(api, layer, ids)
        without = [f for f in ids if f not in explanations]
        if without:
            log.warning(
                "layer %d: %d of %d features have no Neuronpedia explanation, their "
                "descriptions are derived: %s",
                layer,
                len(without),
                len(ids),
                without[:20],
            )
    frame = concept_list(
        layer, ids, read_artifact(logit_lens), read_artifact(activations), explanations
    )
    write_parquet(frame, out, CONCEPTS_SCHEMA)
    for feature, concept, source in frame.drop("layer").iter_rows():
        log.info("layer %d, feature %d (%s): %s", layer, feature, source, concept)

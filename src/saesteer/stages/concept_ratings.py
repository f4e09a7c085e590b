"""Stage `concept_ratings`: each answer rated for concept, instruction and fluency by the
configured judge (an LLM, or the offline proxy), through the shared rating cache."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

import polars as pl

from saesteer.artifacts import read_artifact
from saesteer.concepts.evaluation import RATINGS_SCHEMA, with_harmonic
from saesteer.concepts.judges import Item, JudgeCache, judge_items, make_judge
from saesteer.io import read_json, write_parquet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConceptRatingSettings:
    SECTIONS: ClassVar = ("concepts",)
    judge: dict  # the `concepts.judge` section


def run(
    *,
    model: Annotated[Path, "the run's model.json (the proxy judge's language model)"],
    generations: Annotated[Path, "the layer's concept_generations.parquet"],
    concepts: Annotated[Path, "the layer's concepts.parquet"],
    settings: ConceptRatingSettings,
    resources: Annotated[Path, "the resources folder (the proxy's embedder)"] = Path("resources"),
    device: str = "auto",
    out: Annotated[Path, "concept_ratings.parquet"],
) -> None:
    answers = read_artifact(generations).join(
        read_artifact(concepts).select("layer", "feature", "concept"), on=["layer", "feature"]
    )
    judge = make_judge(settings.judge, read_json(model), device, str(resources))
    items = [
        Item(concept, instruction, text)
        for concept, instruction, text in answers.select(
            "concept", "instruction", "text"
        ).iter_rows()
    ]
    result = judge_items(judge, items, JudgeCache(settings.judge["cache_dir"], judge))
    ratings = with_harmonic(
        answers.with_columns(
            concept_rating=pl.Series(result["concept"], dtype=pl.Float64),
            instruction_rating=pl.Series(result["instruction"], dtype=pl.Float64),
            fluency_rating=pl.Series(result["fluency"], dtype=pl.Float64),
            judge=pl.lit(judge.name),
            judge_proxy=pl.lit(judge.proxy),
        )
    )
    write_parquet(ratings, out, RATINGS_SCHEMA)
    log.info(
        "judge %s%s: %d ratings from the cache, %d new",
        judge.name,
        " (PROXY, not an LLM judge)" if judge.proxy else "",
        result["cache_hits"],
        result["rated"],
    )

"""Stage `concept_table`: each concept's factor chosen on its selection instructions, then
the paper's Table 1 (concept-steering score by method and output-score filter) over all
concept layers, from this run's ratings or the paper's released ones."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

import polars as pl

from saesteer.artifacts import read_artifact
from saesteer.concepts.evaluation import (
    CONCEPT_SCORES_SCHEMA,
    CONCEPT_TABLE_SCHEMA,
    RELEASED_JUDGE,
    concept_scores,
    released_scores,
    table_html,
    table_rows,
)
from saesteer.errors import ConfigError
from saesteer.io import atomic_path, write_parquet
from saesteer.stats import BootstrapSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConceptTableSettings:
    SECTIONS: ClassVar = ("concepts", "findings")
    thresholds: tuple[float, ...]
    aggregation: str  # of_means | per_response
    bootstrap: int  # findings.bootstrap: resamples behind each row's interval
    seed: int  # findings.seed


def _released_scores(released: Path, output_scores: pl.DataFrame, aggregation: str):
    layers = output_scores["layer"].unique().to_list()
    scores = released_scores(read_artifact(released), output_scores, layers, aggregation)
    unscored = scores.filter(pl.col("output_score").is_null())
    if unscored.height:
        # They count in the unfiltered row but can pass no threshold.
        log.warning(
            "%d released concepts have no output score in this run (not in its feature "
            "lists), e.g. %s: they are in the no-filter row only",
            unscored.height,
            unscored.select("layer", "feature").head(5).rows(),
        )
    return scores, RELEASED_JUDGE, False


def _rated_scores(ratings: list[Path], output_scores: pl.DataFrame, aggregation: str):
    frame = pl.concat([read_artifact(p) for p in ratings])
    judges = frame["judge"].unique().to_list()
    if len(judges) != 1:
        raise ConfigError(f"concept ratings from {len(judges)} judges {judges}: rerun with one")
    scores = concept_scores(frame, output_scores, aggregation)
    return scores, judges[0], bool(frame["judge_proxy"][0])


def run(
    *,
    ratings: Annotated[list[Path], "each concept layer's concept_ratings.parquet"] = (),
    released: Annotated[Path | None, "or the paper's (stage released_concepts)"] = None,
    output_scores: Annotated[list[Path], "the concept layers' output_scores.parquet"],
    settings: ConceptTableSettings,
    out_scores: Annotated[Path, "concept_scores.parquet"],
    out_table: Annotated[Path, "concept_table.parquet"],
    out_html: Annotated[Path, "concept_table.html"],
) -> None:
    if bool(ratings) == bool(released):
        raise ConfigError("concept-table: give --ratings or --released, not both")
    scores_by_layer = pl.concat([read_artifact(p) for p in output_scores], how="diagonal")
    if released:
        scores, judge, proxy = _released_scores(released, scores_by_layer, settings.aggregation)
    else:
        scores, judge, proxy = _rated_scores(ratings, scores_by_layer, settings.aggregation)
    bootstrap = BootstrapSettings(settings.bootstrap, settings.seed, live_only=False)
    table = table_rows(scores, list(settings.thresholds), judge, proxy, bootstrap)
    write_parquet(scores, out_scores, CONCEPT_SCORES_SCHEMA)
    write_parquet(table, out_table, CONCEPT_TABLE_SCHEMA)
    with atomic_path(out_html) as tmp:
        tmp.write_text(
            f"<!DOCTYPE html><meta charset='utf-8'>{table_html(table, settings.aggregation)}\n"
        )
    for layer, row, n, score in table.select("layer", "row", "n_concepts", "score").iter_rows():
        log.info("layer %d, %s: %s over %d concepts", layer, row, score, n)

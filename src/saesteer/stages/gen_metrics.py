"""Stage `gen_metrics`: GenSuccess@k (logit-lens tokens in the steered text) and the
perplexity of each generation, per feature and factor."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

import polars as pl

from saesteer.artifacts import read_artifact
from saesteer.gen_metrics import GEN_METRICS_SCHEMA, load_evaluator, score_generations
from saesteer.io import read_json, write_parquet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenMetricsSettings:
    SECTIONS: ClassVar = ("gen_metrics",)
    evaluator: str | None  # a model source; None: the run's model
    perplexity_of: str  # text | continuation
    batch_size: int


def run(
    *,
    model: Annotated[Path, "the run's model.json (its tokenizer counts GenSuccess)"],
    generations: Annotated[Path, "the layer's generations.parquet"],
    logit_lens: Annotated[Path, "the layer's logit_lens.parquet"],
    settings: GenMetricsSettings,
    resources: Annotated[Path, "the resources folder (an evaluator model)"] = Path("resources"),
    device: str = "auto",
    out: Annotated[Path, "gen_metrics.parquet"],
) -> None:
    evaluator = load_evaluator(read_json(model), settings.evaluator, resources, device)
    metrics = score_generations(
        read_artifact(generations),
        read_artifact(logit_lens),
        evaluator.tokenizer,
        evaluator.model,
        evaluator.model_tokenizer,
        evaluator.name,
        settings.perplexity_of,
        settings.batch_size,
    )
    write_parquet(metrics, out, GEN_METRICS_SCHEMA)
    by_factor = metrics.group_by("factor").agg(
        pl.col("gen_success_20").mean(), pl.col("perplexity").median()
    )
    for factor, gs20, ppl in by_factor.sort("factor").iter_rows():
        log.info(
            "layer %d, factor %g: mean GenSuccess@20 %.3f, median perplexity %.1f",
            metrics["layer"][0],
            factor,
            gs20,
            ppl if ppl is not None else float("nan"),
        )

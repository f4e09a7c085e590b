"""The best steering factor of each feature, by the paper's rule (§4.1).

1. Candidates: every factor but 0.0 (the unsteered baseline) whose GenSuccess@20 is at
   most `max_gen_success` (3 in the paper; above it the text is mostly repetition) and
   whose perplexity is known.
2. Normalize GenSuccess@20 and perplexity to 0-1 by dividing each by its maximum over all
   the data (`normalization: max`; `none` keeps raw values).
3. Pick the factor with the largest normalized GenSuccess@20 / normalized perplexity; on a
   tie the smallest factor.
4. When even that factor's GenSuccess@20 is 0, no factor steered the feature at all: it has
   "no effective factor" (`best_factor` null, `effective_factor` false), not the smallest
   factor of a tie among zeros. Its GenSuccess at the best factor is 0, and it counts so
   in every mean.

Dividing by a maximum scales every candidate's objective by the same constant, so the
normalization changes the reported `objective`, never the choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import polars as pl

from saesteer.errors import ConfigError

BEST_FACTORS_SCHEMA = {
    "layer": pl.Int32,
    "feature": pl.Int64,
    "best_factor": pl.Float64,  # null when no factor is a candidate or none is effective
    # GenSuccess@20 > 0 at the best factor; false: no effective factor; null: no candidate
    "effective_factor": pl.Boolean,
    "gen_success_1": pl.Float64,
    "gen_success_5": pl.Float64,
    "gen_success_20": pl.Float64,
    "perplexity": pl.Float64,
    "objective": pl.Float64,
    "n_candidates": pl.Int32,
    "released_factor": pl.Float64,  # the paper's choice, when its best-factor JSON is given
}

NORMALIZATIONS = ("max", "none")


@dataclass(frozen=True)
class BestFactorSettings:
    SECTIONS: ClassVar = ("best_factor",)
    max_gen_success: float
    normalization: str  # max | none

    def __post_init__(self):
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(
                f"best_factor.normalization: {self.normalization!r} (known: {list(NORMALIZATIONS)})"
            )


def choose_best_factors(
    metrics: pl.DataFrame,
    settings: BestFactorSettings,
    released: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One BEST_FACTORS_SCHEMA row per feature of `metrics` (GEN_METRICS_SCHEMA rows)."""
    scale_gs, scale_ppl = 1.0, 1.0
    if settings.normalization == "max":
        scale_gs = metrics["gen_success_20"].max() or 1.0  # all zero: objectives all zero
        scale_ppl = metrics["perplexity"].max() or 1.0
    candidates = metrics.filter(
        (pl.col("factor") != 0)
        & (pl.col("gen_success_20") <= settings.max_gen_success)
        & pl.col("perplexity").is_not_null()
    ).with_columns(
        objective=(pl.col("gen_success_20") / scale_gs) / (pl.col("perplexity") / scale_ppl),
        n_candidates=pl.len().over("feature"),
    )
    best = candidates.sort("feature", "objective", "factor", descending=[False, True, False])
    best = best.group_by("feature", maintain_order=True).first().rename({"factor": "best_factor"})
    features = metrics.select("layer", "feature").unique(maintain_order=True)
    derived = ("layer", "effective_factor", "released_factor")
    columns = [c for c in BEST_FACTORS_SCHEMA if c not in derived]
    frame = features.join(best.select(columns), on="feature", how="left", maintain_order="left")
    if released is None:
        released = pl.DataFrame(schema={"feature": pl.Int64, "released_factor": pl.Float64})
    frame = frame.join(released, on="feature", how="left", maintain_order="left")
    effective = pl.col("gen_success_20") > 0
    return (
        frame.with_columns(
            pl.col("n_candidates").fill_null(0),
            effective_factor=effective,
            best_factor=pl.when(effective).then("best_factor"),
            perplexity=pl.when(effective).then("perplexity"),
            objective=pl.when(effective).then("objective"),
        )
        .sort("feature")
        .select(list(BEST_FACTORS_SCHEMA))
        .cast(BEST_FACTORS_SCHEMA)
    )

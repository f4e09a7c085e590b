"""The per-layer summary of the feature table (SUMMARY_SCHEMA): counts, quartiles and
means of the input and output scores, and the steered features' GenSuccess@20."""

from __future__ import annotations

import polars as pl

from saesteer.aggregate.filtering import weighted_gen_success_expr

# Per layer, then one row with layer null for all layers together.
SUMMARY_SCHEMA = {
    "layer": pl.Int32,
    "depth": pl.Float64,
    "n_features": pl.Int64,
    "n_live": pl.Int64,  # fired on >= input_score.min_examples examples (null: not known)
    "input_score_q25": pl.Float64,
    "input_score_median": pl.Float64,
    "input_score_q75": pl.Float64,
    "input_score_mean": pl.Float64,
    "input_score_chance": pl.Float64,
    "output_score_q25": pl.Float64,
    "output_score_median": pl.Float64,
    "output_score_q75": pl.Float64,
    "output_score_mean": pl.Float64,
    "n_both_above_half": pl.Int64,
    "n_steered": pl.Int64,
    "mean_gen_success_20": pl.Float64,
    "median_best_factor": pl.Float64,
}


def _summary_exprs() -> list[pl.Expr]:
    """The summary columns, for one group of features."""
    quantiles = [
        pl.col(score).quantile(q, "linear").alias(f"{score}_{name}")
        for score in ("input_score", "output_score")
        for q, name in ((0.25, "q25"), (0.5, "median"), (0.75, "q75"))
    ]
    return [
        pl.len().alias("n_features"),
        pl.when(pl.col("live").count() > 0).then(pl.col("live").sum()).alias("n_live"),
        *quantiles,
        pl.col("input_score").mean().alias("input_score_mean"),
        pl.col("output_score").mean().alias("output_score_mean"),
        pl.col("input_score_chance").mean(),
        ((pl.col("input_score") > 0.5) & (pl.col("output_score") > 0.5))
        .sum()
        .alias("n_both_above_half"),
        pl.col("gen_success_20").count().alias("n_steered"),
        weighted_gen_success_expr().alias("mean_gen_success_20"),
        pl.col("best_factor").median().alias("median_best_factor"),
    ]


def summary_table(features: pl.DataFrame) -> pl.DataFrame:
    """SUMMARY_SCHEMA: per layer, then all layers (layer and depth null)."""
    per_layer = features.group_by("layer", "depth").agg(_summary_exprs()).sort("layer")
    overall = features.select(_summary_exprs()).with_columns(
        layer=pl.lit(None, pl.Int32), depth=pl.lit(None, pl.Float64)
    )
    columns = list(SUMMARY_SCHEMA)
    parts = [part.select(columns).cast(SUMMARY_SCHEMA) for part in (per_layer, overall)]
    return pl.concat(parts)

"""All layers' Parquet files joined into one row per feature, a per-layer summary, and the
findings the paper reports, computed from the data.

A stage whose file is missing (not run, or not configured, e.g. SAE metrics of a
downloaded SAE) gives null columns, never zeros.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from saesteer.artifacts import read_artifact
from saesteer.steered_sample import steering_weights

FEATURE_TABLE_SCHEMA = {
    "layer": pl.Int32,
    "depth": pl.Float64,  # (layer + 1) / n_layers: the block's position in the network
    "feature": pl.Int64,
    "logit_lens_tokens": pl.List(pl.Utf8),  # in rank order
    "input_score": pl.Float64,
    "n_examples": pl.Int64,
    "input_score_chance": pl.Float64,  # the layer's chance level (input_score.py)
    "output_score": pl.Float64,
    "best_factor": pl.Float64,
    "gen_success_1": pl.Float64,  # at the best factor
    "gen_success_5": pl.Float64,
    "gen_success_20": pl.Float64,
    "perplexity": pl.Float64,
    # N_h / n_h of a steered feature's output-score stratum (steered_sample.py); null
    # when not steered. Means over steered features weight by it.
    "steering_weight": pl.Float64,
    "variance_explained": pl.Float64,  # of the layer's SAE
    "ce_loss_recovered": pl.Float64,
    "l0": pl.Float64,
    "dead_fraction": pl.Float64,
}

# Per layer, then one row with layer null for all layers together.
SUMMARY_SCHEMA = {
    "layer": pl.Int32,
    "depth": pl.Float64,
    "n_features": pl.Int64,
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

# Which columns each per-layer file gives (the file's name without .parquet).
LAYER_FILES = {
    "input_scores": ["input_score", "n_examples", "input_score_chance"],
    "output_scores": ["output_score"],
    "best_factors": [
        "best_factor",
        "gen_success_1",
        "gen_success_5",
        "gen_success_20",
        "perplexity",
    ],
}
SAE_METRICS = ["variance_explained", "ce_loss_recovered", "l0", "dead_fraction"]

THRESHOLDS = (0.01, 0.1, 0.5)

# The per-layer columns of the findings (`findings()["layers"]` and its HTML table).
LAYER_FINDINGS = (
    "layer",
    "depth",
    "n_features",
    "input_score_median",
    "input_score_mean",
    "input_score_chance",
    "output_score_median",
    "output_score_mean",
)


def _read(path: str | Path | None) -> pl.DataFrame | None:
    return read_artifact(path) if path is not None and Path(path).is_file() else None


def layer_table(layer: int, n_layers: int, files: Mapping[str, str | Path | None]) -> pl.DataFrame:
    """One layer's features with every stage's columns; `files` maps a kind (features,
    logit_lens, sae_metrics and the keys of LAYER_FILES) to its Parquet path or None."""
    features = _read(files.get("features"))
    if features is None:
        raise ValueError(f"layer {layer}: no features file {files.get('features')}")
    table = features.select(pl.col("feature").cast(pl.Int64))
    lens = _read(files.get("logit_lens"))
    if lens is not None:
        tokens = lens.sort("feature", "rank").group_by("feature", maintain_order=True)
        table = table.join(tokens.agg(logit_lens_tokens=pl.col("token")), on="feature", how="left")
    for kind, columns in LAYER_FILES.items():
        frame = _read(files.get(kind))
        if frame is not None:
            table = table.join(frame.select("feature", *columns), on="feature", how="left")
    metrics = _read(files.get("sae_metrics"))
    if metrics is not None:
        table = table.with_columns(pl.lit(metrics[c][0]).alias(c) for c in SAE_METRICS)
    table = table.with_columns(layer=pl.lit(layer), depth=pl.lit((layer + 1) / n_layers))
    missing = [
        pl.lit(None, dtype).alias(c)
        for c, dtype in FEATURE_TABLE_SCHEMA.items()
        if c not in table.columns
    ]
    return table.with_columns(missing).select(list(FEATURE_TABLE_SCHEMA)).cast(FEATURE_TABLE_SCHEMA)


def feature_table(
    layers: Mapping[int, Mapping[str, str | Path | None]],
    n_layers: int,
    output_strata: Sequence[float] = (),
) -> pl.DataFrame:
    """FEATURE_TABLE_SCHEMA rows of every layer, by layer and feature; `output_strata`
    are the cutpoints the steered features were sampled by (generation.output_strata)."""
    tables = [layer_table(layer, n_layers, files) for layer, files in sorted(layers.items())]
    table = pl.concat(tables).sort("layer", "feature")
    return table.with_columns(steering_weight=steering_weights(table, output_strata))


def _weighted_gen_success() -> pl.Expr:
    """Mean GenSuccess@20 of the steered features, each weighted by its stratum's size:
    an estimate of the mean over all the group's features."""
    gs, weight = pl.col("gen_success_20"), pl.col("steering_weight")
    steered = gs.is_not_null() & weight.is_not_null()
    return (gs * weight).filter(steered).sum() / weight.filter(steered).sum()


def weighted_gen_success(features: pl.DataFrame) -> float | None:
    """`_weighted_gen_success` of a feature table; None when nothing is steered."""
    steered = features.filter(pl.col("gen_success_20").is_not_null())
    return steered.select(_weighted_gen_success()).item() if steered.height else None


def _summary_exprs() -> list[pl.Expr]:
    """The summary columns, for one group of features."""
    quantiles = [
        pl.col(score).quantile(q, "linear").alias(f"{score}_{name}")
        for score in ("input_score", "output_score")
        for q, name in ((0.25, "q25"), (0.5, "median"), (0.75, "q75"))
    ]
    return [
        pl.len().alias("n_features"),
        *quantiles,
        pl.col("input_score").mean().alias("input_score_mean"),
        pl.col("output_score").mean().alias("output_score_mean"),
        pl.col("input_score_chance").mean(),
        ((pl.col("input_score") > 0.5) & (pl.col("output_score") > 0.5))
        .sum()
        .alias("n_both_above_half"),
        pl.col("gen_success_20").count().alias("n_steered"),
        _weighted_gen_success().alias("mean_gen_success_20"),
        pl.col("best_factor").median().alias("median_best_factor"),
    ]


def summary_table(features: pl.DataFrame) -> pl.DataFrame:
    """SUMMARY_SCHEMA: per layer, then all layers (layer and depth null)."""
    per_layer = features.group_by("layer", "depth").agg(_summary_exprs()).sort("layer")
    overall = features.select(_summary_exprs()).with_columns(
        layer=pl.lit(None, pl.Int32), depth=pl.lit(None, pl.Float64)
    )
    columns = list(SUMMARY_SCHEMA)
    return pl.concat([per_layer.select(columns), overall.select(columns)]).cast(SUMMARY_SCHEMA)


def threshold_rows(features: pl.DataFrame, thresholds: Sequence[float]) -> pl.DataFrame:
    """For each output-score threshold: features kept, their share, and the mean
    GenSuccess@20 at the best factor of the kept steered features against all steered
    (both weighted by `steering_weight`, so a stratified sample estimates all features)."""
    base = weighted_gen_success(features)
    rows = []
    for threshold in thresholds:
        kept = features.filter(pl.col("output_score") >= threshold)
        kept_steered = kept.filter(pl.col("gen_success_20").is_not_null())
        mean = weighted_gen_success(kept)
        rows.append(
            {
                "threshold": threshold,
                "n_kept": kept.height,
                "kept_fraction": kept.height / features.height if features.height else None,
                "n_steered_kept": kept_steered.height,
                "mean_gen_success_20": mean,
                "gain": None if mean is None or base is None else mean - base,
                "ratio": None if mean is None or not base else mean / base,
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "threshold": pl.Float64,
            "n_kept": pl.Int64,
            "kept_fraction": pl.Float64,
            "n_steered_kept": pl.Int64,
            "mean_gen_success_20": pl.Float64,
            "gain": pl.Float64,
            "ratio": pl.Float64,
        },
    )


def findings(features: pl.DataFrame, summary: pl.DataFrame) -> dict:
    """The paper's findings on this run's data; None where the data cannot say."""
    scored = features.drop_nulls(["input_score", "output_score"])
    both = (scored["input_score"] > 0.5) & (scored["output_score"] > 0.5)
    pair = [pl.col("input_score"), pl.col("output_score")]
    pearson, spearman = (None, None)
    if scored.height >= 3:
        pearson, spearman = scored.select(
            pl.corr(*pair), pl.corr(*pair, method="spearman").alias("s")
        ).row(0)
    layers = summary.drop_nulls("layer")
    crossing = layers.filter(pl.col("output_score_median") > pl.col("input_score_median"))
    crossing_mean = layers.filter(pl.col("output_score_mean") > pl.col("input_score_mean"))
    steered = features.drop_nulls("gen_success_20")
    by_layer = layers.select(LAYER_FINDINGS)
    return {
        "n_features": features.height,
        "n_layers": layers.height,
        "n_scored_both": scored.height,
        "fraction_both_above_half": both.mean() if scored.height else None,
        "pearson_input_output": _finite(pearson),
        "spearman_input_output": _finite(spearman),
        "first_layer_output_above_input": crossing["layer"][0] if crossing.height else None,
        "first_layer_mean_output_above_input": (
            crossing_mean["layer"][0] if crossing_mean.height else None
        ),
        # Means, not medians: most features of a layer score 0 on both scores, so medians
        # tie at 0 where a minority of input (or output) features sets the layer apart.
        "peak_input_layer": _argmax_layer(layers, "input_score_mean"),
        "peak_output_layer": _argmax_layer(layers, "output_score_mean"),
        "layers": by_layer.to_dicts(),
        "n_steered": steered.height,
        "mean_gen_success_20": weighted_gen_success(features),
        "thresholds": threshold_rows(features, THRESHOLDS).to_dicts(),
    }


def _argmax_layer(layers: pl.DataFrame, column: str) -> int | None:
    """The layer where `column` is highest (the first among ties)."""
    rows = layers.drop_nulls(column)
    return rows.sort(column, "layer", descending=[True, False])["layer"][0] if rows.height else None


def _finite(value):
    return None if value is None or not math.isfinite(value) else value

"""Filtering by output score on the stratified steered sample: the mean GenSuccess@20 at
the best factor of all steered features and of those an output-score threshold keeps,
each steered feature weighted by its stratum (steer_selection.py) so the mean estimates
all features, with bootstrap intervals resampled within (layer, output stratum)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from saesteer.stats import BootstrapSettings, Estimate, interval, weighted_mean

THRESHOLDS = (0.01, 0.1, 0.5)


def weighted_gen_success_expr() -> pl.Expr:
    """Mean GenSuccess@20 of the steered features, each weighted by its stratum's size:
    an estimate of the mean over all the group's features."""
    gs, weight = pl.col("gen_success_20"), pl.col("steering_weight")
    steered = gs.is_not_null() & weight.is_not_null()
    return (gs * weight).filter(steered).sum() / weight.filter(steered).sum()


def weighted_gen_success(features: pl.DataFrame) -> float | None:
    """`weighted_gen_success_expr` of a feature table; None when nothing is steered."""
    steered = features.filter(pl.col("gen_success_20").is_not_null())
    return steered.select(weighted_gen_success_expr()).item() if steered.height else None


THRESHOLD_ROWS_SCHEMA = {
    "threshold": pl.Float64,
    "n_kept": pl.Int64,
    "kept_fraction": pl.Float64,
    "n_steered_kept": pl.Int64,
    "mean_gen_success_20": pl.Float64,
    "mean_gen_success_20_low": pl.Float64,
    "mean_gen_success_20_high": pl.Float64,
    "gain": pl.Float64,
    "gain_low": pl.Float64,
    "gain_high": pl.Float64,
    "ratio": pl.Float64,
    "ratio_low": pl.Float64,
    "ratio_high": pl.Float64,
}


def threshold_rows(
    features: pl.DataFrame, thresholds: Sequence[float], settings: BootstrapSettings | None = None
) -> pl.DataFrame:
    """For each output-score threshold: features kept, their share, and the mean
    GenSuccess@20 at the best factor of the kept steered features against all steered
    (both weighted by `steering_weight`, so a stratified sample estimates all features),
    with bootstrap intervals of the mean, gain and ratio when `settings` are given."""
    steered, gs, weight = _steered(features)
    score = steered["output_score"].fill_null(-math.inf).to_numpy().astype(float)
    base = weighted_gen_success(features)
    rows = []
    for threshold in thresholds:
        kept = features.filter(pl.col("output_score") >= threshold)
        mean = weighted_gen_success(kept)
        row = {
            "threshold": threshold,
            "n_kept": kept.height,
            "kept_fraction": kept.height / features.height if features.height else None,
            "n_steered_kept": int((score >= threshold).sum()),
            "mean_gen_success_20": mean,
            "gain": None if mean is None or base is None else mean - base,
            "ratio": None if mean is None or not base else mean / base,
        }
        if settings is not None:
            for name, statistic in _threshold_statistics(gs, weight, score >= threshold).items():
                estimate = interval(statistic, steered_strata(steered), settings)
                row[f"{name}_low"], row[f"{name}_high"] = estimate.low, estimate.high
        rows.append(row)
    return pl.DataFrame(rows, schema=THRESHOLD_ROWS_SCHEMA)


def _steered(features: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """The steered features with a weight, their GenSuccess@20 and their weights."""
    steered = features.filter(
        pl.col("gen_success_20").is_not_null() & pl.col("steering_weight").is_not_null()
    )
    as_array = {
        c: steered[c].to_numpy().astype(float) for c in ("gen_success_20", "steering_weight")
    }
    return steered, as_array["gen_success_20"], as_array["steering_weight"]


def _threshold_statistics(gs: np.ndarray, weight: np.ndarray, kept: np.ndarray) -> dict:
    """Mean of the kept, gain and ratio over all, as functions of resampled row indices."""

    def parts(i):
        return weighted_mean(gs[i][kept[i]], weight[i][kept[i]]), weighted_mean(gs[i], weight[i])

    def gain(i):
        mean, base = parts(i)
        return None if mean is None or base is None else mean - base

    def ratio(i):
        mean, base = parts(i)
        return None if mean is None or not base else mean / base

    return {"mean_gen_success_20": lambda i: parts(i)[0], "gain": gain, "ratio": ratio}


def gen_success_interval(features: pl.DataFrame, settings: BootstrapSettings) -> Estimate:
    """The weighted mean GenSuccess@20 of all steered features, with its interval."""
    steered, gs, weight = _steered(features)
    return interval(lambda i: weighted_mean(gs[i], weight[i]), steered_strata(steered), settings)


def steered_strata(steered: pl.DataFrame) -> np.ndarray:
    """One label per (layer, output stratum) of steered features."""
    stratum = steered["output_stratum"].fill_null(0).to_numpy().astype(np.int64)
    return steered["layer"].to_numpy().astype(np.int64) * 1_000 + stratum

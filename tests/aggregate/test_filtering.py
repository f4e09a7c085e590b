"""Filtering by output score on the steered sample: thresholds that keep nothing, and
the gain's interval against a plain loop over the same resamples."""

import numpy as np
import polars as pl
import pytest

from saesteer.aggregate.filtering import threshold_rows
from saesteer.stats import resample_indices
from tests.aggregate.tables import BOOTSTRAP, steered_table


def test_thresholds_that_keep_nothing_say_so():
    features = pl.DataFrame(
        {
            "output_score": [0.001, 0.002],
            "gen_success_20": [1.0, None],
            "steering_weight": [2.0, None],
        },
        schema={
            "output_score": pl.Float64,
            "gen_success_20": pl.Float64,
            "steering_weight": pl.Float64,
        },
    )
    row = threshold_rows(features, [0.5]).row(0, named=True)
    assert row["n_kept"] == 0 and row["mean_gen_success_20"] is None and row["gain"] is None


def test_the_gain_interval_equals_a_reference_loop_over_the_same_resamples():
    """threshold_rows' vectorized interval, against a plain loop over resamples drawn
    from the same seeded generator (weighted means written out by hand)."""
    table = steered_table([3.0, 1.0, 2.5, 0.0, 2.0], [0.0, 1.0, 0.5, 0.0, 0.2])
    table = table.with_columns(
        steering_weight=pl.when(pl.col("layer") == 0).then(2.0).otherwise(1.0)
    )
    row = threshold_rows(table, [0.1], BOOTSTRAP).row(0, named=True)
    rows = table.rows(named=True)
    groups = np.array([r["layer"] * 1000 for r in rows])
    rng = np.random.default_rng(BOOTSTRAP.seed)
    gains = []
    for sample in resample_indices(groups, BOOTSTRAP.bootstrap, rng):
        picked = [rows[i] for i in sample]
        kept = [r for r in picked if r["output_score"] >= 0.1]
        if not kept:
            continue
        mean = sum(r["gen_success_20"] * r["steering_weight"] for r in kept) / sum(
            r["steering_weight"] for r in kept
        )
        base = sum(r["gen_success_20"] * r["steering_weight"] for r in picked) / sum(
            r["steering_weight"] for r in picked
        )
        gains.append(mean - base)
    assert row["gain_low"] == pytest.approx(np.percentile(gains, 2.5))
    assert row["gain_high"] == pytest.approx(np.percentile(gains, 97.5))

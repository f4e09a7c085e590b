"""The per-layer summary against hand computations."""

import polars as pl
import pytest

from saesteer.aggregate.summary import SUMMARY_SCHEMA


def test_summary_per_layer_and_overall(tables):
    features, summary = tables
    assert summary.schema == pl.Schema(SUMMARY_SCHEMA)
    two, eight, overall = summary.rows(named=True)
    assert (two["layer"], eight["layer"], overall["layer"]) == (2, 8, None)
    assert two["input_score_median"] == 0.7 and eight["output_score_median"] == 0.6
    assert two["input_score_q25"] == pytest.approx(0.65) and two[
        "input_score_q75"
    ] == pytest.approx(0.8)
    assert eight["n_both_above_half"] == 1 and overall["n_both_above_half"] == 1  # (8, 12)
    assert eight["n_steered"] == 2 and eight["mean_gen_success_20"] == 2.5
    assert (two["input_score_chance"], eight["input_score_chance"]) == pytest.approx((0.05, 0.2))
    assert overall["n_features"] == 6 and overall["median_best_factor"] == 2.0

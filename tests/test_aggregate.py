"""Aggregation, findings and plots on small hand-made Parquet files with known answers."""

import numpy as np
import polars as pl
import pytest

from saesteer.aggregate import (
    FEATURE_TABLE_SCHEMA,
    SUMMARY_SCHEMA,
    feature_table,
    findings,
    threshold_rows,
)
from tests.helpers import hand_made_tables, write_layer


@pytest.fixture
def tables(tmp_path):
    return hand_made_tables(tmp_path)


def test_one_row_per_feature_with_every_stage(tables):
    features, _ = tables
    assert features.schema == pl.Schema(FEATURE_TABLE_SCHEMA)
    assert features.select("layer", "feature").rows() == [
        (2, 10),
        (2, 11),
        (2, 12),
        (8, 10),
        (8, 11),
        (8, 12),
    ]
    first = features.row(0, named=True)
    assert first["logit_lens_tokens"] == ["t10_0", "t10_1"]  # in rank order
    assert first["depth"] == 0.3 and first["input_score"] == 0.9 and first["best_factor"] == 0.2
    assert first["variance_explained"] == 0.8 and first["n_examples"] == 50
    # Layer 8 has no SAE metrics (e.g. a downloaded SAE): null, not zero.
    assert features.filter(pl.col("layer") == 8)["variance_explained"].is_null().all()
    assert features.filter(pl.col("feature") == 12)["best_factor"].to_list() == [2.0, None]


def test_a_missing_stage_is_null_not_zero(tmp_path):
    files = write_layer(tmp_path, 2, with_steering=False)
    files["input_scores"].unlink()
    features = feature_table({2: files}, n_layers=10)
    for column in ("input_score", "best_factor", "gen_success_20", "perplexity"):
        assert features[column].is_null().all()
    assert features["output_score"].to_list() == [0.0, 0.001, 0.02]
    with pytest.raises(ValueError, match="layer 2: no features file"):
        files["features"].unlink()
        feature_table({2: files}, n_layers=10)


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


def test_findings_equal_hand_computations(tables):
    features, summary = tables
    found = findings(features, summary)
    assert found["fraction_both_above_half"] == pytest.approx(1 / 6)
    inputs = np.array([0.9, 0.6, 0.7, 0.1, 0.0, 0.8])
    outputs = np.array([0.0, 0.001, 0.02, 0.3, 0.6, 0.7])
    assert found["pearson_input_output"] == pytest.approx(np.corrcoef(inputs, outputs)[0, 1])
    ranks = [np.argsort(np.argsort(v)) for v in (inputs, outputs)]
    assert found["spearman_input_output"] == pytest.approx(np.corrcoef(*ranks)[0, 1])
    assert found["first_layer_output_above_input"] == 8  # 0.6 > 0.1 there, 0.001 < 0.7 at 2
    assert (found["peak_input_layer"], found["peak_output_layer"]) == (2, 8)
    # means: input 0.733 / 0.3, output 0.007 / 0.533
    assert found["first_layer_mean_output_above_input"] == 8
    assert [row["output_score_mean"] for row in found["layers"]] == pytest.approx([0.007, 1.6 / 3])
    rows = found["layers"]
    assert [(row["layer"], row["input_score_median"]) for row in rows] == [(2, 0.7), (8, 0.1)]
    assert [row["input_score_chance"] for row in rows] == pytest.approx([0.05, 0.2])
    # Layer 2 steers all 3 features (weight 1 each), layer 8 two of 3 (weight 1.5 each):
    # (0 + 0.5 + 1 + 1.5 * (2 + 3)) / 6, the estimate of all 6 features' mean.
    assert found["n_steered"] == 5 and found["mean_gen_success_20"] == pytest.approx(1.5)
    at = {row["threshold"]: row for row in found["thresholds"]}
    # >= 0.01 keeps (2,12), (8,10), (8,11), (8,12): 3 steered with GenSuccess 1, 2, 3
    assert at[0.01]["n_kept"] == 4 and at[0.01]["n_steered_kept"] == 3
    assert at[0.01]["mean_gen_success_20"] == pytest.approx((1 + 1.5 * (2 + 3)) / 4)
    assert at[0.01]["gain"] == pytest.approx(2.125 - 1.5)
    assert at[0.01]["ratio"] == pytest.approx(2.125 / 1.5)
    assert at[0.5]["n_kept"] == 2 and at[0.5]["mean_gen_success_20"] == 3.0
    assert at[0.1]["kept_fraction"] == pytest.approx(3 / 6)


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

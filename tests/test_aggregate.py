"""Aggregation, findings and plots on small hand-made Parquet files with known answers."""

import numpy as np
import polars as pl
import pytest

from saesteer.aggregate.filtering import threshold_rows
from saesteer.aggregate.findings import findings
from saesteer.aggregate.join import FEATURE_TABLE_SCHEMA, feature_table
from saesteer.aggregate.summary import SUMMARY_SCHEMA
from saesteer.errors import DataFileError
from saesteer.stats import BootstrapSettings, resample_indices
from tests.helpers import hand_made_tables, write_layer

BOOTSTRAP = BootstrapSettings(bootstrap=2000, seed=0, live_only=True)


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
    with pytest.raises(DataFileError, match="layer 2: no features file"):
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
    found = findings(features, BOOTSTRAP)
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


def _steered_table(gs_high, gs_low, layers=(0, 16)):
    """Per layer, steered features above output score 0.1 with GenSuccess `gs_high` and
    below it with `gs_low`, all live, no strata (equal weights within a layer)."""
    rows = []
    for layer in layers:
        for i, gs in enumerate(gs_high + gs_low):
            rows.append(
                {
                    "layer": layer,
                    "depth": (layer + 1) / 18,
                    "feature": i,
                    "input_score": 0.0,
                    "input_score_chance": 0.2,
                    "output_score": 0.5 if i < len(gs_high) else 0.001,
                    "gen_success_20": gs,
                    "best_factor": 4.0 if gs else None,
                    "live": True,
                    "output_stratum": 0,
                }
            )
    table = pl.DataFrame(rows)
    return table.with_columns(
        steering_weight=pl.when(pl.col("gen_success_20").is_not_null()).then(1.0)
    )


def _verdict(found, name):
    return next(v for v in found["verdicts"] if v["finding"] == name)


def test_a_clear_gain_agrees_a_clear_loss_disagrees_and_noise_is_inconclusive():
    rng = np.random.default_rng(1)
    high, low = (2 + rng.random(12) * 0.5).tolist(), (rng.random(12) * 0.5).tolist()
    gain = findings(_steered_table(high, low), BOOTSTRAP)
    loss = findings(_steered_table(low, high), BOOTSTRAP)
    noise = findings(_steered_table(high[:3] + low[:3], low[3:6] + high[3:6]), BOOTSTRAP)
    for name in ("filtering_gain_0.01", "filtering_gain_0.1", "output_score_predicts_steering"):
        assert _verdict(gain, name)["verdict"] == "agrees"
        assert _verdict(loss, name)["verdict"] == "disagrees"
    verdict = _verdict(noise, "filtering_gain_0.1")
    assert verdict["verdict"] == "inconclusive" and verdict["low"] < 0 < verdict["high"]
    row = next(r for r in gain["thresholds"] if r["threshold"] == 0.1)
    assert row["gain_low"] <= row["gain"] <= row["gain_high"]
    assert row["n_steered_kept"] == 24 and _verdict(gain, "filtering_gain_0.1")["n"] == 24


def test_a_finding_with_too_few_features_is_inconclusive_not_a_verdict():
    found = findings(_steered_table([2.0], [0.0], layers=(16,)), BOOTSTRAP)
    for v in found["verdicts"]:
        assert v["verdict"] == "inconclusive", v
    # One layer only: no early-against-late contrast to measure.
    assert _verdict(found, "input_features_early")["n"] == 0


def test_the_gain_interval_equals_a_reference_loop_over_the_same_resamples():
    """threshold_rows' vectorized interval, against a plain loop over resamples drawn
    from the same seeded generator (weighted means written out by hand)."""
    table = _steered_table([3.0, 1.0, 2.5, 0.0, 2.0], [0.0, 1.0, 0.5, 0.0, 0.2])
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


def test_findings_count_live_features_and_reweigh_their_strata():
    table = _steered_table([2.0, 2.0], [0.0, 1.0, 0.0], layers=(16,))
    # Feature 4 never fired: its GenSuccess 0 and its output score leave the findings.
    table = table.with_columns(live=pl.col("feature") != 4)
    live = findings(table, BOOTSTRAP)
    everything = findings(table, BootstrapSettings(2000, 0, live_only=False))
    assert (live["n_counted"], live["n_not_live"], everything["n_counted"]) == (4, 1, 5)
    assert live["mean_gen_success_20"] == pytest.approx(5 / 4)
    assert everything["mean_gen_success_20"] == pytest.approx(5 / 5)


def test_share_above_chance_per_layer_has_its_n_and_interval(tables):
    features, _ = tables
    found = findings(features, BOOTSTRAP)
    two, eight = found["layers"]
    # Layer 2's inputs 0.9, 0.6, 0.7 all beat its chance 0.05; layer 8's 0.1, 0, 0.8 vs 0.2.
    assert (two["share_above_chance"], two["n_scored_input"]) == (1.0, 3)
    assert two["share_above_chance_low"] == two["share_above_chance_high"] == 1.0
    assert eight["share_above_chance"] == pytest.approx(1 / 3)
    assert eight["share_above_chance_low"] == 0.0 and eight["share_above_chance_high"] == 1.0
    assert found["bootstrap"]["resamples"] == 2000 and found["bootstrap"]["seed"] == 0


def test_mean_by_layer_has_its_n_and_interval(tables):
    from saesteer.aggregate.findings import mean_by_layer

    features, _ = tables
    means = {r["layer"]: r for r in mean_by_layer(features, "input_score", BOOTSTRAP).to_dicts()}
    # Layer 2's input scores 0.9, 0.6, 0.7; layer 8's 0.1, 0, 0.8.
    assert means[2]["n"] == 3 and means[2]["mean"] == pytest.approx(2.2 / 3)
    assert 0.6 - 1e-9 <= means[2]["low"] < means[2]["mean"] < means[2]["high"] <= 0.9 + 1e-9
    assert means[8]["mean"] == pytest.approx(0.3) and means[8]["low"] >= 0.0
    assert means[8]["high"] <= 0.8 + 1e-9

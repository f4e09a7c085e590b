"""The findings on hand-made tables with known answers: hand computations, verdicts on
clear gains and losses, live features only, per-layer shares and means."""

import numpy as np
import polars as pl
import pytest

from saesteer.aggregate.findings import findings
from saesteer.stats import BootstrapSettings
from tests.aggregate.tables import BOOTSTRAP, steered_table


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


def _verdict(found, name):
    return next(v for v in found["verdicts"] if v["finding"] == name)


def test_a_clear_gain_agrees_a_clear_loss_disagrees_and_noise_is_inconclusive():
    rng = np.random.default_rng(1)
    high, low = (2 + rng.random(12) * 0.5).tolist(), (rng.random(12) * 0.5).tolist()
    gain = findings(steered_table(high, low), BOOTSTRAP)
    loss = findings(steered_table(low, high), BOOTSTRAP)
    noise = findings(steered_table(high[:3] + low[:3], low[3:6] + high[3:6]), BOOTSTRAP)
    for name in ("filtering_gain_0.01", "filtering_gain_0.1", "output_score_predicts_steering"):
        assert _verdict(gain, name)["verdict"] == "agrees"
        assert _verdict(loss, name)["verdict"] == "disagrees"
    verdict = _verdict(noise, "filtering_gain_0.1")
    assert verdict["verdict"] == "inconclusive" and verdict["low"] < 0 < verdict["high"]
    row = next(r for r in gain["thresholds"] if r["threshold"] == 0.1)
    assert row["gain_low"] <= row["gain"] <= row["gain_high"]
    assert row["n_steered_kept"] == 24 and _verdict(gain, "filtering_gain_0.1")["n"] == 24


def test_a_finding_with_too_few_features_is_inconclusive_not_a_verdict():
    found = findings(steered_table([2.0], [0.0], layers=(16,)), BOOTSTRAP)
    for v in found["verdicts"]:
        assert v["verdict"] == "inconclusive", v
    # One layer only: no early-against-late contrast to measure.
    assert _verdict(found, "input_features_early")["n"] == 0


def test_findings_count_live_features_and_reweigh_their_strata():
    table = steered_table([2.0, 2.0], [0.0, 1.0, 0.0], layers=(16,))
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

"""Harmonic means, factor selection and Table 1 rows, against hand-computed answers."""

import math

import numpy as np
import polars as pl
import pytest

from saesteer.concepts.evaluation import (
    concept_scores,
    harmonic,
    released_scores,
    select_factors,
    table_html,
    table_rows,
    with_harmonic,
)
from saesteer.errors import ConfigError
from saesteer.stats import BootstrapSettings


def _ratings(rows):
    """rows: (method, feature, factor, split, concept, instruction, fluency)."""
    frame = pl.DataFrame(
        rows,
        schema=[
            "method",
            "feature",
            "factor",
            "split",
            "concept_rating",
            "instruction_rating",
            "fluency_rating",
        ],
        orient="row",
    )
    return with_harmonic(frame.with_columns(layer=pl.lit(7, pl.Int32)))


def test_harmonic_mean_known_values():
    frame = pl.DataFrame(
        {"a": [2.0, 1.0, 0.0, 1.0], "b": [2.0, 2.0, 2.0, 1.0], "c": [2.0, 2.0, 2.0, 0.5]}
    )
    got = frame.select(h=harmonic(pl.col("a"), pl.col("b"), pl.col("c")))["h"].to_list()
    assert got == pytest.approx([2.0, 1.5, 0.0, 3 / (1 + 1 + 2)])


def test_factor_selection_on_select_split_ties_to_smaller():
    rows = [
        # factor 1: select harmonic 1.0; factor 2: 2.0; factor 4: 2.0 (tie -> 2)
        ("sae", 1, 1.0, "select", 1.0, 1.0, 1.0),
        ("sae", 1, 2.0, "select", 2.0, 2.0, 2.0),
        ("sae", 1, 4.0, "select", 2.0, 2.0, 2.0),
        # the test split would prefer factor 1: it must not leak into the choice
        ("sae", 1, 1.0, "test", 2.0, 2.0, 2.0),
        ("sae", 1, 2.0, "test", 1.0, 1.0, 0.5),
        ("sae", 1, 4.0, "test", 0.0, 2.0, 2.0),
        ("prompting", 1, 0.0, "test", 1.0, 2.0, 2.0),
    ]
    chosen = select_factors(_ratings(rows), "per_response").sort("method")
    assert chosen.select("method", "factor").rows() == [("prompting", 0.0), ("sae", 2.0)]
    scores = concept_scores(
        _ratings(rows),
        pl.DataFrame({"layer": [7], "feature": [1], "output_score": [0.3]}),
        "per_response",
    )
    sae = scores.filter(pl.col("method") == "sae").row(0, named=True)
    assert sae["score"] == pytest.approx(3 / (1 + 1 + 2))  # test ratings at factor 2
    assert sae["select_score"] == pytest.approx(2.0)
    assert sae["output_score"] == 0.3
    prompting = scores.filter(pl.col("method") == "prompting").row(0, named=True)
    assert prompting["score"] == pytest.approx(1.5)


def test_aggregations_differ_as_defined():
    # per response: mean(hm(2,2,0), hm(0,2,2)) = 0; of means: hm(1, 2, 1) = 1.2
    rows = [
        ("sae", 1, 1.0, "select", 2.0, 2.0, 0.0),
        ("sae", 1, 1.0, "select", 0.0, 2.0, 2.0),
        ("sae", 1, 1.0, "test", 2.0, 2.0, 0.0),
        ("sae", 1, 1.0, "test", 0.0, 2.0, 2.0),
    ]
    lens = pl.DataFrame({"layer": [7], "feature": [1], "output_score": [0.3]})
    per = concept_scores(_ratings(rows), lens, "per_response")["score"][0]
    of_means = concept_scores(_ratings(rows), lens, "of_means")["score"][0]
    assert per == 0.0
    assert of_means == pytest.approx(3 / (1 / 1 + 1 / 2 + 1 / 1))
    with pytest.raises(ConfigError, match="aggregation"):
        concept_scores(_ratings(rows), lens, "median")


def test_table_rows_filter_by_output_score():
    scores = pl.DataFrame(
        {
            "layer": [7] * 5,
            "method": ["sae", "sae", "sae", "diffmean", "prompting"],
            "feature": [1, 2, 3, 1, 1],
            "score": [1.0, 0.5, 0.0, 0.25, 1.5],
            "concept_rating": [1.0] * 5,
            "instruction_rating": [1.0] * 5,
            "fluency_rating": [1.0] * 5,
            "output_score": [0.2, 0.05, 0.001, 0.2, 0.2],
        }
    )
    table = table_rows(scores, [0.01, 0.1], "proxy:x", True)
    got = {r: (n, s) for r, n, s in table.select("row", "n_concepts", "score").iter_rows()}
    assert list(got) == [
        "Prompting",
        "SAE, output score >= 0.1",
        "SAE, output score >= 0.01",
        "SAE, no filter",
        "DiffMean",
    ]
    assert got["SAE, output score >= 0.1"] == (1, 1.0)
    assert got["SAE, output score >= 0.01"] == (2, 0.75)
    assert got["SAE, no filter"] == (3, pytest.approx(0.5))
    assert got["DiffMean"] == (1, 0.25)
    html = table_html(table, "per_response")
    assert "Proxy judge" in html and "0.750 (n=2)" in html


def test_every_row_has_an_interval_over_concepts_and_a_filter_its_gain():
    rng = np.random.default_rng(0)
    n = 30
    output = rng.random(n) ** 3  # few pass 0.1
    scores = pl.DataFrame(
        {
            "layer": [7] * n,
            "method": ["sae"] * n,
            "feature": list(range(n)),
            "score": (output > 0.1) * 1.0 + rng.random(n) * 0.2,  # filtered concepts win
            "concept_rating": [1.0] * n,
            "instruction_rating": [1.0] * n,
            "fluency_rating": [1.0] * n,
            "output_score": output,
        }
    )
    table = table_rows(scores, [0.1, 0.9999], "proxy:x", True, BootstrapSettings(2000, 0, False))
    rows = {r["row"]: r for r in table.iter_rows(named=True)}
    unfiltered, filtered = rows["SAE, no filter"], rows["SAE, output score >= 0.1"]
    assert unfiltered["score_low"] < unfiltered["score"] < unfiltered["score_high"]
    assert unfiltered["gain_over_unfiltered"] is None
    assert filtered["gain_over_unfiltered"] == pytest.approx(
        filtered["score"] - unfiltered["score"]
    )
    assert 0 < filtered["gain_low"] < filtered["gain_over_unfiltered"] < filtered["gain_high"]
    # No concept passes 0.9999 (or just one): no interval, and the page says why.
    none = rows["SAE, output score >= 0.9999"]
    assert none["n_concepts"] <= 1 and none["score_low"] is None and none["gain_low"] is None
    html = table_html(table, "per_response")
    assert "one concept cannot carry a conclusion" in html
    assert f"[{filtered['gain_low']:.3g}, {filtered['gain_high']:.3g}]" in html


def test_a_feature_exactly_at_a_threshold_is_kept_and_one_just_below_is_not():
    """Table 1's rows are "output score >= t": the boundary itself is in."""
    just_below = [math.nextafter(t, 0.0) for t in (0.1, 0.01)]
    scores = pl.DataFrame(
        {
            "layer": [7] * 4,
            "method": ["sae"] * 4,
            "feature": [1, 2, 3, 4],
            "score": [1.0, 0.8, 0.6, 0.4],
            "concept_rating": [1.0] * 4,
            "instruction_rating": [1.0] * 4,
            "fluency_rating": [1.0] * 4,
            "output_score": [0.1, just_below[0], 0.01, just_below[1]],
        }
    )
    table = table_rows(scores, [0.01, 0.1], "proxy:x", True)
    got = dict(table.select("row", "n_concepts").iter_rows())
    assert got["SAE, output score >= 0.1"] == 1
    assert got["SAE, output score >= 0.01"] == 3
    assert got["SAE, no filter"] == 4


def test_released_scores_leave_out_answers_missing_an_aspect():
    """per_response over the release: an answer counts only when rated on all three
    aspects; a concept whose concept cache entry is null has no score, not a crash."""
    released = pl.DataFrame(
        {
            "layer": [20, 20],
            "feature": [1, 2],
            "best_factor": [0.4, 8.0],
            "n_test": [2, 2],
            "concept_rating": [1.5, None],
            "instruction_rating": [2.0, 1.0],
            "fluency_rating": [1.0, 2.0],
            "score": [3 / (1 / 1.5 + 1 / 2 + 1 / 1), None],
            "test_concept_ratings": [[2.0, 1.0], None],
            "test_instruction_ratings": [[2.0, None], [1.0, 1.0]],
            "test_fluency_ratings": [[1.0, 1.0], [2.0, 2.0]],
        }
    )
    lens = pl.DataFrame({"layer": [20, 20], "feature": [1, 2], "output_score": [0.3, 0.0]})
    of_means = released_scores(released, lens, [20], "of_means")
    assert of_means["score"].to_list() == released["score"].to_list()
    assert of_means["factor"].to_list() == [0.4, 8.0] and set(of_means["method"]) == {"sae"}
    per = released_scores(released, lens, [20], "per_response")
    assert per["score"].to_list() == [pytest.approx(3 / (1 / 2 + 1 / 2 + 1 / 1)), None]
    table = table_rows(per, [0.1], "released", False)
    assert table["row"].to_list() == ["SAE, output score >= 0.1", "SAE, no filter"]
    assert table["n_concepts"].to_list() == [1, 1]
    with pytest.raises(ConfigError, match=r"no concepts at layers \[31\]"):
        released_scores(released, lens, [20, 31], "of_means")

"""The best-factor rule on hand-made metric tables with known answers."""

import polars as pl
import pytest

from saesteer.best_factor import BEST_FACTORS_SCHEMA, BestFactorSettings, choose_best_factors
from saesteer.errors import ConfigError
from saesteer.settings import settings_for


def metrics(rows) -> pl.DataFrame:
    """(feature, factor, gen_success_20, perplexity) rows of layer 5."""
    frame = pl.DataFrame(
        rows, schema=["feature", "factor", "gen_success_20", "perplexity"], orient="row"
    )
    return frame.with_columns(
        layer=pl.lit(5),
        gen_success_1=pl.col("gen_success_20") / 4,
        gen_success_5=pl.col("gen_success_20") / 2,
    )


TABLE = metrics(
    [
        # feature 1: 0.0 is never chosen; 8.0 is over the cap; best ratio at 2.0
        (1, 0.0, 2.9, 1.0),
        (1, 0.4, 0.5, 10.0),
        (1, 2.0, 2.0, 20.0),
        (1, 8.0, 5.0, 10.0),
        # feature 2: all GenSuccess zero: no effective factor (not the smallest of a tie)
        (2, 0.0, 0.0, 30.0),
        (2, 0.2, 0.0, 40.0),
        (2, 0.4, 0.0, 35.0),
        # feature 3: every steered factor over the cap: no candidate
        (3, 0.0, 0.0, 30.0),
        (3, 4.0, 3.5, 80.0),
        # feature 4: an exact tie in the objective between 1.2 and 3.0
        (4, 3.0, 2.0, 40.0),
        (4, 1.2, 1.0, 20.0),
        (4, 6.0, 3.0, None),  # no perplexity: not a candidate
    ]
)


def test_the_papers_rule():
    best = choose_best_factors(TABLE, settings_for(BestFactorSettings))
    assert best.columns == list(BEST_FACTORS_SCHEMA)
    rows = {r["feature"]: r for r in best.iter_rows(named=True)}
    assert [rows[f]["best_factor"] for f in (1, 2, 3, 4)] == [2.0, None, None, 1.2]
    assert [rows[f]["effective_factor"] for f in (1, 2, 3, 4)] == [True, False, None, True]
    assert [rows[f]["n_candidates"] for f in (1, 2, 3, 4)] == [2, 2, 0, 2]
    # objective = (gs / max gs) / (ppl / max ppl): max gs 5.0, max ppl 80.0
    assert rows[1]["objective"] == pytest.approx((2.0 / 5.0) / (20.0 / 80.0))
    assert rows[1]["gen_success_20"] == 2.0 and rows[1]["perplexity"] == 20.0
    assert rows[1]["gen_success_1"] == 0.5
    # No effective factor still steered the feature: GenSuccess 0 counts in every mean.
    assert rows[2]["gen_success_20"] == 0.0 and rows[2]["gen_success_1"] == 0.0
    assert rows[2]["objective"] is None and rows[2]["perplexity"] is None
    assert rows[3]["objective"] is None and rows[3]["released_factor"] is None
    assert set(best["layer"]) == {5}


def test_normalization_changes_the_objective_not_the_choice():
    normalized = choose_best_factors(TABLE, settings_for(BestFactorSettings, normalization="max"))
    raw = choose_best_factors(TABLE, settings_for(BestFactorSettings, normalization="none"))
    assert normalized["best_factor"].to_list() == raw["best_factor"].to_list()
    assert raw.filter(pl.col("feature") == 1)["objective"].item() == pytest.approx(2.0 / 20.0)


def test_the_cap_is_configurable():
    best = choose_best_factors(TABLE, settings_for(BestFactorSettings, max_gen_success=10.0))
    rows = {r["feature"]: r["best_factor"] for r in best.iter_rows(named=True)}
    assert rows[1] == 8.0 and rows[3] == 4.0  # 5.0/10 beats 2.0/20; 4.0 is now allowed
    with pytest.raises(ConfigError, match="best_factor.normalization"):
        settings_for(BestFactorSettings, {"normalization": "z-score"})


def test_released_factors_are_joined():
    released = pl.DataFrame({"feature": [1, 4, 99], "released_factor": [0.4, 6.0, 2.0]})
    best = choose_best_factors(TABLE, settings_for(BestFactorSettings), released)
    assert best["released_factor"].to_list() == [0.4, None, None, 6.0]

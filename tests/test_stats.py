"""The bootstrap intervals and the verdict rule (saesteer.stats)."""

import numpy as np
import pytest

from saesteer.stats import (
    BootstrapSettings,
    Claim,
    Estimate,
    interval,
    ranks,
    resample_indices,
    spearman,
)

SETTINGS = BootstrapSettings(bootstrap=4000, seed=3, live_only=True)


def test_the_interval_of_a_mean_has_the_width_the_normal_theory_gives():
    """For a mean of n draws the 95% interval is about mean +- 1.96 sd / sqrt(n)."""
    values = np.random.default_rng(0).normal(5.0, 2.0, size=400)
    est = interval(lambda i: values[i].mean(), np.zeros(len(values)), SETTINGS)
    half = 1.96 * values.std() / np.sqrt(len(values))
    assert est.value == pytest.approx(values.mean())
    assert est.low == pytest.approx(values.mean() - half, abs=0.25 * half)
    assert est.high == pytest.approx(values.mean() + half, abs=0.25 * half)
    assert est.n == 400


def test_stratified_resamples_stay_in_their_group_and_keep_its_size():
    groups = np.array([0, 0, 0, 5, 5, 9])
    draws = resample_indices(groups, 500, np.random.default_rng(0))
    assert draws.shape == (500, 6)
    assert set(draws[:, :3].ravel()) == {0, 1, 2} and set(draws[:, 3:5].ravel()) == {3, 4}
    assert (draws[:, 5] == 5).all()  # a group of one always draws itself


def test_the_same_seed_gives_the_same_interval_and_another_seed_another():
    values = np.arange(30.0)
    again = [interval(lambda i: values[i].mean(), np.zeros(30), SETTINGS) for _ in range(2)]
    other = interval(lambda i: values[i].mean(), np.zeros(30), BootstrapSettings(4000, 4, True))
    assert again[0] == again[1] and other != again[0]


def test_undefined_resamples_are_skipped_and_too_many_give_no_interval():
    values = np.array([0.0, 0.0, 0.0, 1.0])

    def ratio(i):  # undefined when no 1 is drawn (a third of resamples)
        return 1.0 / values[i].sum() if values[i].sum() else None

    est = interval(ratio, np.zeros(4), SETTINGS)
    assert est.value == 1.0 and est.high == 1.0 and est.low == pytest.approx(1 / 3)
    # Defined only where row 0 is drawn twice: in 26% of resamples of 10, too few.
    est = interval(
        lambda i: 1.0 if (i == 0).sum() >= 2 or len(set(i)) == 10 else None, np.zeros(10), SETTINGS
    )
    assert est.value == 1.0 and est.low is None and est.high is None


def test_spearman_and_ties_equal_hand_ranks():
    assert ranks(np.array([10.0, 30.0, 20.0, 20.0])).tolist() == [1.0, 4.0, 2.5, 2.5]
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 3.0, 2.0, 4.0])
    assert spearman(x, y) == pytest.approx(0.8)  # 1 - 6 * 2 / (4 * 15)
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert spearman(x, np.ones(4)) is None and spearman(x[:2], y[:2]) is None


@pytest.mark.parametrize(
    ("low", "high", "above", "verdict"),
    [
        (0.1, 0.5, True, "agrees"),
        (-0.5, -0.1, True, "disagrees"),
        (-0.1, 0.5, True, "inconclusive"),
        (0.0, 0.004, False, "agrees"),  # a share under the 1% reference
        (0.02, 0.06, False, "disagrees"),
    ],
)
def test_the_verdict_rule(low, high, above, verdict):
    claim = Claim("x", "the paper", "a statistic", 0.0 if above else 0.01, above=above)
    result = claim.verdict(Estimate((low + high) / 2, low, high, 10))
    assert result["verdict"] == verdict
    assert result["rule"].startswith("agrees if the 95% interval")
    assert Claim("x", "p", "s", 0.0).verdict(Estimate(1.0, None, None, 1))["verdict"] == (
        "inconclusive"
    )

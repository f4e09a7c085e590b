import math

import polars as pl
import pytest

from saesteer.aggregate.filtering import threshold_rows, weighted_gen_success
from saesteer.steer_selection import allocate, select_steered, steering_weights, stratum


def test_strata_are_half_open_at_the_cutpoints():
    cuts = [0.01, 0.1]
    assert [stratum(s, cuts) for s in (0.0, 0.0099, 0.01, 0.05, 0.1, 1.0)] == [0, 0, 1, 1, 2, 2]
    assert stratum(None, cuts) == 0


@pytest.mark.parametrize(
    ("sizes", "n", "counts"),
    [
        ([114, 14, 0], 2, [1, 1, 0]),  # an empty stratum gets none
        ([108, 20], 2, [1, 1]),
        ([124, 0], 2, [2, 0]),  # one non-empty stratum: all of n
        ([60, 30, 10], 10, [6, 3, 1]),  # proportional once each has one
        ([3, 0], 5, [3, 0]),  # never more than a stratum holds
        ([5, 5], 3, [1, 2]),  # a tie goes to the higher stratum
    ],
)
def test_allocation_covers_every_stratum_then_goes_by_size(sizes, n, counts):
    assert allocate(sizes, n) == counts


@pytest.mark.parametrize(
    ("sizes", "n", "counts"),
    [
        ([20, 18, 10], 20, [6, 7, 7]),  # equal shares; a tie goes to the higher stratum
        ([28, 4], 20, [16, 4]),  # a small stratum is taken whole, the rest goes on
        ([60, 30, 0], 10, [5, 5, 0]),
    ],
)
def test_equal_allocation_gives_a_rare_stratum_as_many_as_a_common_one(sizes, n, counts):
    assert allocate(sizes, n, "equal") == counts
    with pytest.raises(ValueError, match="generation.allocation"):
        allocate(sizes, n, "neyman")


def test_too_few_steered_features_for_the_strata_is_an_error():
    with pytest.raises(ValueError, match="max_features = 1 cannot cover the 2"):
        allocate([10, 3], 1)


def test_selection_keeps_the_lists_order_and_takes_each_stratums_first():
    features = [40, 7, 13, 2, 99, 5]
    scores = {40: 0.0, 7: 0.3, 13: 0.0, 2: 0.5, 99: 0.002, 5: 0.2}
    assert select_steered(features, 3) == [40, 7, 13]  # no cutpoints: the first n
    assert select_steered(features, 2, scores, [0.1]) == [40, 7]
    assert select_steered(features, 3, scores, [0.01, 0.4]) == [40, 7, 2]
    assert select_steered(features, None, scores, [0.1]) == features
    with pytest.raises(ValueError, match=r"features \[13\] have no output score"):
        select_steered(features, 2, {f: s for f, s in scores.items() if f != 13}, [0.1])


def _population(seed_shift: int = 0) -> pl.DataFrame:
    """Two layers whose GenSuccess@20 is constant within each output-score stratum, so the
    mean over all features is known without steering any of them."""
    rows = []
    for layer, (n_low, n_high) in {3: (90, 10), 9: (40, 60)}.items():
        for i in range(n_low + n_high):
            high = i >= n_low
            rows.append(
                {
                    "layer": layer,
                    "feature": i,
                    "output_score": 0.5 if high else 0.001,
                    "gs": 3.0 if high else 0.5 + layer / 10,
                }
            )
    return pl.DataFrame(rows)


def test_weighted_means_of_a_stratified_sample_equal_the_population_means():
    population = _population()
    steered = set()
    for layer, group in population.group_by("layer"):
        scores = dict(zip(group["feature"], group["output_score"], strict=True))
        chosen = select_steered(group["feature"].to_list(), 4, scores, [0.1])
        steered |= {(layer[0], f) for f in chosen}
    table = population.with_columns(
        gen_success_20=pl.when(
            pl.struct("layer", "feature").map_elements(
                lambda r: (r["layer"], r["feature"]) in steered, return_dtype=pl.Boolean
            )
        )
        .then(pl.col("gs"))
        .otherwise(None)
    )
    table = table.with_columns(steering_weight=steering_weights(table, [0.1]))
    # Each layer's weights add up to its features: the sample stands for all of them.
    sums = table.group_by("layer").agg(pl.col("steering_weight").sum()).sort("layer")
    assert sums["steering_weight"].to_list() == [100.0, 100.0]
    assert math.isclose(weighted_gen_success(table), population["gs"].mean())
    # The plain mean of the sample over-counts the rare high stratum of layer 3.
    assert not math.isclose(table["gen_success_20"].mean(), population["gs"].mean())
    rows = threshold_rows(table, [0.1]).row(0, named=True)
    assert rows["n_kept"] == 70 and rows["mean_gen_success_20"] == 3.0
    assert math.isclose(rows["gain"], 3.0 - population["gs"].mean())


def test_without_strata_every_steered_feature_of_a_layer_weighs_the_same():
    table = pl.DataFrame(
        {
            "layer": [1, 1, 1, 1, 2, 2],
            "output_score": [0.0, 0.2, 0.3, None, 0.0, 0.9],
            "gen_success_20": [1.0, 3.0, None, None, 2.0, None],
        }
    )
    weights = steering_weights(table, [])
    assert weights.to_list() == [2.0, 2.0, None, None, 2.0, None]
    # Equal layers, equal samples: the weighted mean is the plain mean.
    assert weighted_gen_success(table.with_columns(steering_weight=weights)) == 2.0


def test_live_features_keep_the_lists_order_and_drop_those_without_an_input_score():
    from saesteer.steer_selection import live_features

    scores = pl.DataFrame(
        {"feature": [3, 1, 7, 5], "input_score": [0.2, None, 0.0, None]},
        schema={"feature": pl.Int64, "input_score": pl.Float64},
    )
    assert live_features([7, 5, 3, 1], scores) == [7, 3]
    with pytest.raises(ValueError, match=r"\[9\]"):
        live_features([3, 9], scores)

"""Which of a layer's features are steered, and what each one stands for.

Steering costs far more per feature than scoring, so a run steers a sample of each
layer's scored features. With no output-score cutpoints the sample is the first
`max_features` of the layer's (random) feature list. With cutpoints, the layer's features
fall into output-score strata, every non-empty stratum gets at least one steered feature
and the rest go by stratum size: a threshold such as 0.1, which few features pass, then
still has steered features above it. Each steered feature carries the weight
N_h / n_h of its stratum (features in it / steered in it), so means over steered features
estimate the mean over all scored features (a Hajek estimator) whatever the design.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence

import polars as pl

from saesteer.errors import ConfigError, DataFileError


def stratum(score: float | None, cutpoints: Sequence[float]) -> int:
    """0 below the first cutpoint, len(cutpoints) at or above the last; a missing score
    counts as lowest."""
    return 0 if score is None else bisect.bisect_right(list(cutpoints), score)


ALLOCATIONS = ("proportional", "equal")


def allocate(sizes: Sequence[int], n: int, allocation: str = "proportional") -> list[int]:
    """Steered features per stratum: one for every non-empty stratum, then one at a time
    to the stratum furthest below its share (ties to the higher stratum), never more than
    a stratum holds. The share is n * size / total (`proportional`), or the same for every
    stratum (`equal`: a rare stratum, such as output scores >= 0.1, gets as many steered
    features as a common one, which is what a contrast between strata needs)."""
    if allocation not in ALLOCATIONS:
        raise ConfigError(f"generation.allocation: {allocation!r} (known: {list(ALLOCATIONS)})")
    counts = [min(size, 1) for size in sizes]
    if n < sum(counts):
        raise ConfigError(
            f"generation.max_features = {n} cannot cover the {sum(counts)} non-empty "
            "output-score strata (generation.output_strata); raise it or drop cutpoints"
        )
    total = sum(sizes)
    for _ in range(min(n, total) - sum(counts)):
        open_ = [h for h, size in enumerate(sizes) if counts[h] < size]
        if allocation == "equal":
            h = max(open_, key=lambda h: (-counts[h], h))
        else:
            h = max(open_, key=lambda h: (n * sizes[h] / total - counts[h], h))
        counts[h] += 1
    return counts


def select_steered(
    features: Sequence[int],
    n: int | None,
    output_scores: Mapping[int, float] | None = None,
    cutpoints: Sequence[float] = (),
    allocation: str = "proportional",
) -> list[int]:
    """The features to steer, in the list's order: the first of each stratum's features,
    as many as `allocate` gives it."""
    features = list(features)
    if n is None or n >= len(features):
        return features
    if not cutpoints:
        return features[:n]
    if output_scores is None:
        raise ConfigError("output-score strata need the layer's output scores")
    unknown = [f for f in features if f not in output_scores]
    if unknown:
        raise DataFileError(f"features {unknown[:5]} have no output score")
    strata = [stratum(output_scores[f], cutpoints) for f in features]
    counts = allocate([strata.count(h) for h in range(len(cutpoints) + 1)], n, allocation)
    chosen = []
    for feature, h in zip(features, strata, strict=True):
        if counts[h] > 0:
            chosen.append(feature)
            counts[h] -= 1
    return chosen


def live_features(features: Sequence[int], input_scores: pl.DataFrame) -> list[int]:
    """The features of the list, in its order, that are live: their input score exists
    (`input_scores.parquet` has one for a feature with at least input_score.min_examples
    examples). A feature the table does not name is an error, not a silent drop."""
    known = dict(
        zip(input_scores["feature"].to_list(), input_scores["input_score"].to_list(), strict=True)
    )
    unknown = [f for f in features if f not in known]
    if unknown:
        raise DataFileError(f"features {unknown[:5]} are not in the layer's input scores")
    return [f for f in features if known[f] is not None]


def output_strata(features: pl.DataFrame, cutpoints: Sequence[float]) -> pl.Series:
    """Per row of a feature table (output_score): its output-score stratum."""
    expr = pl.col("output_score").map_elements(
        lambda s: stratum(s, cutpoints), return_dtype=pl.Int64, skip_nulls=False
    )
    return features.select(expr.cast(pl.Int32).alias("output_stratum"))["output_stratum"]


def stratum_weights(features: pl.DataFrame) -> pl.Series:
    """Per row of a feature table (layer, output_stratum, gen_success_20): N_h / n_h for a
    steered feature (gen_success_20 not null) and null otherwise, N_h counting the
    table's rows of the (layer, stratum): weights of a filtered table stand for its rows."""
    steered = pl.col("gen_success_20").is_not_null()
    weight = pl.len().over("layer", "output_stratum") / steered.sum().over(
        "layer", "output_stratum"
    )
    expr = pl.when(steered).then(weight).otherwise(None).cast(pl.Float64)
    return features.select(expr.alias("steering_weight"))["steering_weight"]


def steering_weights(features: pl.DataFrame, cutpoints: Sequence[float]) -> pl.Series:
    """`stratum_weights` with the strata of `cutpoints`."""
    return stratum_weights(features.with_columns(output_stratum=output_strata(features, cutpoints)))

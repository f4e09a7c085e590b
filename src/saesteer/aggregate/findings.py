"""The findings the paper reports, computed from the feature table: each with its n and
bootstrap interval, and a verdict against the paper for each claim in CLAIMS."""

from __future__ import annotations

import numpy as np
import polars as pl

from saesteer.aggregate.filtering import (
    THRESHOLDS,
    gen_success_interval,
    steered_strata,
    threshold_rows,
)
from saesteer.aggregate.join import SAE_METRICS
from saesteer.aggregate.summary import summary_table
from saesteer.stats import (
    LEVEL,
    BootstrapSettings,
    Claim,
    Estimate,
    finite_or_none,
    interval,
    spearman,
)
from saesteer.steer_selection import stratum_weights

# The per-layer columns of the findings (`findings()["layers"]` and its HTML table).
LAYER_FINDINGS = (
    "layer",
    "depth",
    "n_features",
    "input_score_median",
    "input_score_mean",
    "input_score_chance",
    "output_score_median",
    "output_score_mean",
)

# The paper's findings that a run can test, each as a claim on one statistic (stats.py).
CLAIMS = {
    "input_features_early": Claim(
        "input_features_early",
        "input features live in early layers (high input scores there, near zero later)",
        "share of scored features above their layer's chance level, first third of the "
        "network minus last third",
        0.0,
    ),
    "output_features_late": Claim(
        "output_features_late",
        "output scores rise in the last third of the network",
        "mean output score, last third of the network minus first third",
        0.0,
    ),
    "roles_rarely_both": Claim(
        "roles_rarely_both",
        "high input and high output scores rarely co-occur (both > 0.5 for well under 1%)",
        "share of features with both scores > 0.5",
        0.01,
        above=False,
        # A resample of n features with none above both cannot show a share below 3/n
        # (the rule of three): below 300 features a 1% claim is not measurable.
        min_n=300,
    ),
    "filtering_gain_0.01": Claim(
        "filtering_gain_0.01",
        "keeping features with output score >= 0.01 raises GenSuccess@20 (by ~0.4)",
        "gain in mean GenSuccess@20 at the best factor, output score >= 0.01 over all",
        0.0,
    ),
    "filtering_gain_0.1": Claim(
        "filtering_gain_0.1",
        "a harder threshold (0.1) raises GenSuccess@20 more (2-3x overall)",
        "gain in mean GenSuccess@20 at the best factor, output score >= 0.1 over all",
        0.0,
    ),
    "output_score_predicts_steering": Claim(
        "output_score_predicts_steering",
        "features with higher output scores steer better",
        "Spearman correlation of output score and GenSuccess@20 over steered features",
        0.0,
        min_n=5,
    ),
}


def counted_features(features: pl.DataFrame, live_only: bool) -> pl.DataFrame:
    """The features the findings count: the live ones (a feature with unknown liveness
    counts), with steering weights that stand for the counted features only."""
    if not live_only:
        return features
    kept = features.filter(pl.col("live").fill_null(True))
    return kept.with_columns(steering_weight=stratum_weights(kept))


def findings(features: pl.DataFrame, settings: BootstrapSettings) -> dict:
    """The paper's findings on this run's data, each with its n and bootstrap interval, and
    a verdict against the paper for each claim in CLAIMS; None where the data cannot say."""
    counted = counted_features(features, settings.live_only)
    summary = summary_table(counted)
    scored = counted.drop_nulls(["input_score", "output_score"])
    both = (scored["input_score"] > 0.5) & (scored["output_score"] > 0.5)
    pair = [pl.col("input_score"), pl.col("output_score")]
    pearson, spearman_io = (None, None)
    if scored.height >= 3:
        pearson, spearman_io = scored.select(
            pl.corr(*pair), pl.corr(*pair, method="spearman").alias("s")
        ).row(0)
    layers = summary.drop_nulls("layer")
    crossing = layers.filter(pl.col("output_score_median") > pl.col("input_score_median"))
    crossing_mean = layers.filter(pl.col("output_score_mean") > pl.col("input_score_mean"))
    steered = counted.drop_nulls("gen_success_20")
    present = [c for c in SAE_METRICS if c in features.columns]  # a hand-made table may lack them
    quality = features.group_by("layer").agg(pl.col(c).first() for c in present)
    by_layer = (
        layers.select(LAYER_FINDINGS)
        .join(
            above_chance_by_layer(counted, settings), on="layer", how="left", maintain_order="left"
        )
        .join(quality, on="layer", how="left", maintain_order="left")
    )
    both_share = interval(lambda i: both.to_numpy()[i].mean(), np.zeros(scored.height), settings)
    thresholds = threshold_rows(counted, THRESHOLDS, settings)
    overall = gen_success_interval(counted, settings)
    estimates = {
        "input_features_early": depth_contrast(counted, "above_chance", settings),
        "output_features_late": depth_contrast(counted, "output_score", settings, late=True),
        "roles_rarely_both": both_share,
        "filtering_gain_0.01": _gain_estimate(thresholds, 0.01),
        "filtering_gain_0.1": _gain_estimate(thresholds, 0.1),
        "output_score_predicts_steering": output_gen_success_spearman(counted, settings),
    }
    return {
        "n_features": features.height,
        "n_counted": counted.height,
        "live_only": settings.live_only,
        "n_not_live": features.filter(pl.col("live").not_()).height,
        "n_layers": layers.height,
        "bootstrap": {
            "resamples": settings.bootstrap,
            "seed": settings.seed,
            "level": LEVEL,
            "method": "percentile; features resampled with replacement within each layer "
            "(steered features within each layer's output-score stratum)",
        },
        "n_scored_both": scored.height,
        "fraction_both_above_half": both_share.value,
        "fraction_both_above_half_interval": [both_share.low, both_share.high],
        "pearson_input_output": finite_or_none(pearson),
        "spearman_input_output": finite_or_none(spearman_io),
        "first_layer_output_above_input": crossing["layer"][0] if crossing.height else None,
        "first_layer_mean_output_above_input": (
            crossing_mean["layer"][0] if crossing_mean.height else None
        ),
        # Means, not medians: most features of a layer score 0 on both scores, so medians
        # tie at 0 where a minority of input (or output) features sets the layer apart.
        "peak_input_layer": _argmax_layer(layers, "input_score_mean"),
        "peak_output_layer": _argmax_layer(layers, "output_score_mean"),
        "layers": by_layer.to_dicts(),
        "n_steered": steered.height,
        "n_no_effective_factor": steered.filter(pl.col("best_factor").is_null()).height,
        "mean_gen_success_20": overall.value,
        "mean_gen_success_20_interval": [overall.low, overall.high],
        "spearman_output_gen_success": estimates["output_score_predicts_steering"].as_dict(),
        "thresholds": thresholds.to_dicts(),
        "verdicts": [CLAIMS[name].verdict(e) for name, e in estimates.items()],
    }


def above_chance_by_layer(features: pl.DataFrame, settings: BootstrapSettings) -> pl.DataFrame:
    """Per layer: scored features (input score known), the share above the layer's chance
    level, and its interval."""
    share = mean_by_layer(_above_chance(features), "above_chance", settings)
    return share.rename(
        {
            "n": "n_scored_input",
            "mean": "share_above_chance",
            "low": "share_above_chance_low",
            "high": "share_above_chance_high",
        }
    )


def mean_by_layer(features: pl.DataFrame, column: str, settings: BootstrapSettings) -> pl.DataFrame:
    """Per layer: the mean of `column` over the features that have it, its interval, n."""
    rows = []
    for layer, group in features.drop_nulls(column).group_by("layer", maintain_order=True):
        values = group[column].to_numpy().astype(float)
        mean = interval(lambda i, v=values: v[i].mean(), np.zeros(len(values)), settings)
        rows.append(
            {"layer": layer[0], "n": mean.n, "mean": mean.value, "low": mean.low, "high": mean.high}
        )
    schema = {
        "layer": pl.Int32,
        "n": pl.Int64,
        "mean": pl.Float64,
        "low": pl.Float64,
        "high": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def _above_chance(features: pl.DataFrame) -> pl.DataFrame:
    return features.drop_nulls(["input_score", "input_score_chance"]).with_columns(
        above_chance=(pl.col("input_score") > pl.col("input_score_chance")).cast(pl.Float64)
    )


def depth_contrast(
    features: pl.DataFrame, column: str, settings: BootstrapSettings, late: bool = False
) -> Estimate:
    """Mean of `column` over the features of layers in the first third of the network
    (depth <= 1/3) minus the last third's (depth > 2/3); `late` reverses it. Features are
    resampled within their layer."""
    frame = _above_chance(features) if column == "above_chance" else features
    frame = frame.drop_nulls(column).filter((pl.col("depth") <= 1 / 3) | (pl.col("depth") > 2 / 3))
    values = frame[column].to_numpy().astype(float)
    early = (frame["depth"] <= 1 / 3).to_numpy()
    sign = -1.0 if late else 1.0

    def contrast(i):
        first, last = values[i][early[i]], values[i][~early[i]]
        return sign * (first.mean() - last.mean()) if len(first) and len(last) else None

    groups = frame["layer"].to_numpy()
    n = frame.height if early.any() and (~early).any() else 0
    return interval(contrast, groups, settings, n=n)


def output_gen_success_spearman(features: pl.DataFrame, settings: BootstrapSettings) -> Estimate:
    """Spearman's correlation of output score and GenSuccess@20 at the best factor over the
    steered features (unweighted), resampled within layer and stratum."""
    steered = features.drop_nulls(["gen_success_20", "output_score"])
    x, y = steered["output_score"].to_numpy(), steered["gen_success_20"].to_numpy()
    return interval(lambda i: spearman(x[i], y[i]), steered_strata(steered), settings)


def _gain_estimate(thresholds: pl.DataFrame, threshold: float) -> Estimate:
    row = thresholds.filter(pl.col("threshold") == threshold).row(0, named=True)
    return Estimate(row["gain"], row["gain_low"], row["gain_high"], row["n_steered_kept"])


def _argmax_layer(layers: pl.DataFrame, column: str) -> int | None:
    """The layer where `column` is highest (the first among ties)."""
    rows = layers.drop_nulls(column)
    return rows.sort(column, "layer", descending=[True, False])["layer"][0] if rows.height else None

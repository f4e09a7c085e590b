"""All layers' Parquet files joined into one row per feature, a per-layer summary, and the
findings the paper reports, computed from the data.

A stage whose file is missing (not run, or not configured, e.g. SAE metrics of a
downloaded SAE) gives null columns, never zeros.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from saesteer.artifacts import read_artifact
from saesteer.stats import (
    LEVEL,
    BootstrapSettings,
    Claim,
    Estimate,
    interval,
    spearman,
    weighted_mean,
)
from saesteer.steer_selection import output_strata, stratum_weights

FEATURE_TABLE_SCHEMA = {
    "layer": pl.Int32,
    "depth": pl.Float64,  # (layer + 1) / n_layers: the block's position in the network
    "feature": pl.Int64,
    "logit_lens_tokens": pl.List(pl.Utf8),  # in rank order
    "input_score": pl.Float64,
    "n_examples": pl.Int64,
    "input_score_chance": pl.Float64,  # the layer's chance level (input_score.py)
    "output_score": pl.Float64,
    "density": pl.Float64,  # share of tokens it fires on (mined corpus or Neuronpedia)
    "best_factor": pl.Float64,  # null with no effective factor (best_factor.py)
    "effective_factor": pl.Boolean,
    "gen_success_1": pl.Float64,  # at the best factor
    "gen_success_5": pl.Float64,
    "gen_success_20": pl.Float64,
    "perplexity": pl.Float64,
    # N_h / n_h of a steered feature's output-score stratum (steer_selection.py); null
    # when not steered. Means over steered features weight by it.
    "steering_weight": pl.Float64,
    # Its output-score stratum of generation.output_strata (0 = below the first cutpoint)
    "output_stratum": pl.Int32,
    # Fired on >= input_score.min_examples examples (its input score exists); null when no
    # input scores were computed. Findings count live features only by default: a latent
    # that never fires still gets an output score, which says nothing about steering.
    "live": pl.Boolean,
    "variance_explained": pl.Float64,  # of the layer's SAE
    "ce_loss_recovered": pl.Float64,
    "l0": pl.Float64,
    "dead_fraction": pl.Float64,  # fires on none of the training tokens counted
    "silent_fraction": pl.Float64,  # fires on none of the held-out tokens (dead or rare)
}

# Per layer, then one row with layer null for all layers together.
SUMMARY_SCHEMA = {
    "layer": pl.Int32,
    "depth": pl.Float64,
    "n_features": pl.Int64,
    "n_live": pl.Int64,  # fired on >= input_score.min_examples examples (null: not known)
    "input_score_q25": pl.Float64,
    "input_score_median": pl.Float64,
    "input_score_q75": pl.Float64,
    "input_score_mean": pl.Float64,
    "input_score_chance": pl.Float64,
    "output_score_q25": pl.Float64,
    "output_score_median": pl.Float64,
    "output_score_q75": pl.Float64,
    "output_score_mean": pl.Float64,
    "n_both_above_half": pl.Int64,
    "n_steered": pl.Int64,
    "mean_gen_success_20": pl.Float64,
    "median_best_factor": pl.Float64,
}

# Which columns each per-layer file gives (the file's name without .parquet).
LAYER_FILES = {
    "densities": ["density"],
    "input_scores": ["input_score", "n_examples", "input_score_chance"],
    "output_scores": ["output_score"],
    "best_factors": [
        "best_factor",
        "effective_factor",
        "gen_success_1",
        "gen_success_5",
        "gen_success_20",
        "perplexity",
    ],
}
SAE_METRICS = ["variance_explained", "ce_loss_recovered", "l0", "dead_fraction", "silent_fraction"]

THRESHOLDS = (0.01, 0.1, 0.5)

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


def _read(path: str | Path | None) -> pl.DataFrame | None:
    return read_artifact(path) if path is not None and Path(path).is_file() else None


def layer_table(layer: int, n_layers: int, files: Mapping[str, str | Path | None]) -> pl.DataFrame:
    """One layer's features with every stage's columns; `files` maps a kind (features,
    logit_lens, sae_metrics and the keys of LAYER_FILES) to its Parquet path or None."""
    features = _read(files.get("features"))
    if features is None:
        raise ValueError(f"layer {layer}: no features file {files.get('features')}")
    table = features.select(pl.col("feature").cast(pl.Int64))
    lens = _read(files.get("logit_lens"))
    if lens is not None:
        tokens = lens.sort("feature", "rank").group_by("feature", maintain_order=True)
        table = table.join(tokens.agg(logit_lens_tokens=pl.col("token")), on="feature", how="left")
    for kind, columns in LAYER_FILES.items():
        frame = _read(files.get(kind))
        if frame is not None:
            table = table.join(frame.select("feature", *columns), on="feature", how="left")
    metrics = _read(files.get("sae_metrics"))
    if metrics is not None:
        # An sae_metrics.parquet from before silent_fraction existed has it null.
        table = table.with_columns(
            pl.lit(metrics[c][0] if c in metrics.columns else None, pl.Float64).alias(c)
            for c in SAE_METRICS
        )
    table = table.with_columns(layer=pl.lit(layer), depth=pl.lit((layer + 1) / n_layers))
    if "n_examples" in table.columns:
        table = table.with_columns(live=pl.col("input_score").is_not_null())
    missing = [
        pl.lit(None, dtype).alias(c)
        for c, dtype in FEATURE_TABLE_SCHEMA.items()
        if c not in table.columns
    ]
    return table.with_columns(missing).select(list(FEATURE_TABLE_SCHEMA)).cast(FEATURE_TABLE_SCHEMA)


def feature_table(
    layers: Mapping[int, Mapping[str, str | Path | None]],
    n_layers: int,
    cutpoints: Sequence[float] = (),
) -> pl.DataFrame:
    """FEATURE_TABLE_SCHEMA rows of every layer, by layer and feature; `cutpoints` are
    the output-score strata the steered features were sampled by (generation.output_strata)."""
    tables = [layer_table(layer, n_layers, files) for layer, files in sorted(layers.items())]
    table = pl.concat(tables).sort("layer", "feature")
    table = table.with_columns(output_stratum=output_strata(table, cutpoints))
    return table.with_columns(steering_weight=stratum_weights(table))


def _weighted_gen_success() -> pl.Expr:
    """Mean GenSuccess@20 of the steered features, each weighted by its stratum's size:
    an estimate of the mean over all the group's features."""
    gs, weight = pl.col("gen_success_20"), pl.col("steering_weight")
    steered = gs.is_not_null() & weight.is_not_null()
    return (gs * weight).filter(steered).sum() / weight.filter(steered).sum()


def weighted_gen_success(features: pl.DataFrame) -> float | None:
    """`_weighted_gen_success` of a feature table; None when nothing is steered."""
    steered = features.filter(pl.col("gen_success_20").is_not_null())
    return steered.select(_weighted_gen_success()).item() if steered.height else None


def _summary_exprs() -> list[pl.Expr]:
    """The summary columns, for one group of features."""
    quantiles = [
        pl.col(score).quantile(q, "linear").alias(f"{score}_{name}")
        for score in ("input_score", "output_score")
        for q, name in ((0.25, "q25"), (0.5, "median"), (0.75, "q75"))
    ]
    return [
        pl.len().alias("n_features"),
        pl.when(pl.col("live").count() > 0).then(pl.col("live").sum()).alias("n_live"),
        *quantiles,
        pl.col("input_score").mean().alias("input_score_mean"),
        pl.col("output_score").mean().alias("output_score_mean"),
        pl.col("input_score_chance").mean(),
        ((pl.col("input_score") > 0.5) & (pl.col("output_score") > 0.5))
        .sum()
        .alias("n_both_above_half"),
        pl.col("gen_success_20").count().alias("n_steered"),
        _weighted_gen_success().alias("mean_gen_success_20"),
        pl.col("best_factor").median().alias("median_best_factor"),
    ]


def summary_table(features: pl.DataFrame) -> pl.DataFrame:
    """SUMMARY_SCHEMA: per layer, then all layers (layer and depth null)."""
    per_layer = features.group_by("layer", "depth").agg(_summary_exprs()).sort("layer")
    overall = features.select(_summary_exprs()).with_columns(
        layer=pl.lit(None, pl.Int32), depth=pl.lit(None, pl.Float64)
    )
    columns = list(SUMMARY_SCHEMA)
    parts = [part.select(columns).cast(SUMMARY_SCHEMA) for part in (per_layer, overall)]
    return pl.concat(parts)


THRESHOLD_ROWS_SCHEMA = {
    "threshold": pl.Float64,
    "n_kept": pl.Int64,
    "kept_fraction": pl.Float64,
    "n_steered_kept": pl.Int64,
    "mean_gen_success_20": pl.Float64,
    "mean_gen_success_20_low": pl.Float64,
    "mean_gen_success_20_high": pl.Float64,
    "gain": pl.Float64,
    "gain_low": pl.Float64,
    "gain_high": pl.Float64,
    "ratio": pl.Float64,
    "ratio_low": pl.Float64,
    "ratio_high": pl.Float64,
}


def threshold_rows(
    features: pl.DataFrame, thresholds: Sequence[float], settings: BootstrapSettings | None = None
) -> pl.DataFrame:
    """For each output-score threshold: features kept, their share, and the mean
    GenSuccess@20 at the best factor of the kept steered features against all steered
    (both weighted by `steering_weight`, so a stratified sample estimates all features),
    with bootstrap intervals of the mean, gain and ratio when `settings` are given."""
    steered, gs, weight = _steered(features)
    score = steered["output_score"].fill_null(-math.inf).to_numpy().astype(float)
    base = weighted_gen_success(features)
    rows = []
    for threshold in thresholds:
        kept = features.filter(pl.col("output_score") >= threshold)
        mean = weighted_gen_success(kept)
        row = {
            "threshold": threshold,
            "n_kept": kept.height,
            "kept_fraction": kept.height / features.height if features.height else None,
            "n_steered_kept": int((score >= threshold).sum()),
            "mean_gen_success_20": mean,
            "gain": None if mean is None or base is None else mean - base,
            "ratio": None if mean is None or not base else mean / base,
        }
        if settings is not None:
            for name, statistic in _threshold_statistics(gs, weight, score >= threshold).items():
                estimate = interval(statistic, _strata(steered), settings)
                row[f"{name}_low"], row[f"{name}_high"] = estimate.low, estimate.high
        rows.append(row)
    return pl.DataFrame(rows, schema=THRESHOLD_ROWS_SCHEMA)


def _steered(features: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """The steered features with a weight, their GenSuccess@20 and their weights."""
    steered = features.filter(
        pl.col("gen_success_20").is_not_null() & pl.col("steering_weight").is_not_null()
    )
    as_array = {
        c: steered[c].to_numpy().astype(float) for c in ("gen_success_20", "steering_weight")
    }
    return steered, as_array["gen_success_20"], as_array["steering_weight"]


def _threshold_statistics(gs: np.ndarray, weight: np.ndarray, kept: np.ndarray) -> dict:
    """Mean of the kept, gain and ratio over all, as functions of resampled row indices."""

    def parts(i):
        return weighted_mean(gs[i][kept[i]], weight[i][kept[i]]), weighted_mean(gs[i], weight[i])

    def gain(i):
        mean, base = parts(i)
        return None if mean is None or base is None else mean - base

    def ratio(i):
        mean, base = parts(i)
        return None if mean is None or not base else mean / base

    return {"mean_gen_success_20": lambda i: parts(i)[0], "gain": gain, "ratio": ratio}


def gen_success_interval(features: pl.DataFrame, settings: BootstrapSettings) -> Estimate:
    """The weighted mean GenSuccess@20 of all steered features, with its interval."""
    steered, gs, weight = _steered(features)
    return interval(lambda i: weighted_mean(gs[i], weight[i]), _strata(steered), settings)


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
        "pearson_input_output": _finite(pearson),
        "spearman_input_output": _finite(spearman_io),
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
    return interval(lambda i: spearman(x[i], y[i]), _strata(steered), settings)


def _strata(steered: pl.DataFrame) -> np.ndarray:
    """One label per (layer, output stratum) of steered features."""
    stratum = steered["output_stratum"].fill_null(0).to_numpy().astype(np.int64)
    return steered["layer"].to_numpy().astype(np.int64) * 1_000 + stratum


def _gain_estimate(thresholds: pl.DataFrame, threshold: float) -> Estimate:
    row = thresholds.filter(pl.col("threshold") == threshold).row(0, named=True)
    return Estimate(row["gain"], row["gain_low"], row["gain_high"], row["n_steered_kept"])


def _argmax_layer(layers: pl.DataFrame, column: str) -> int | None:
    """The layer where `column` is highest (the first among ties)."""
    rows = layers.drop_nulls(column)
    return rows.sort(column, "layer", descending=[True, False])["layer"][0] if rows.height else None


def _finite(value):
    return None if value is None or not math.isfinite(value) else value

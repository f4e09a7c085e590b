"""The paper's figures from the aggregated tables (matplotlib, PNG). A figure whose data
is missing says so on the canvas; report_pages.py puts them on one page with captions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from saesteer.aggregate.filtering import (
    THRESHOLDS,
    gen_success_interval,
    threshold_rows,
    weighted_gen_success,
)
from saesteer.aggregate.findings import counted_features, mean_by_layer
from saesteer.errors import ConfigError
from saesteer.io import atomic_path
from saesteer.stats import BootstrapSettings

FIGSIZE = (6.4, 4.2)


def pyplot():
    """matplotlib.pyplot, drawing to files only (the Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure():
    return pyplot().subplots(figsize=FIGSIZE, dpi=120)


def _save(fig, path: str | Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _no_data(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no data: {what}", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_roles(
    summary: pl.DataFrame, ax, features: pl.DataFrame | None = None, settings=None
) -> None:
    """Mean, median and IQR of input and output scores per layer, layer as fraction of
    depth. The mean is drawn because on small models most features score 0, which pins
    both medians to 0 while a minority of features carries the role. With the `features`
    and bootstrap `settings`, the means get their 95% intervals as error bars."""
    layers = summary.drop_nulls("layer").sort("depth")
    ax.set_title("Feature roles across layers")
    shown = False
    for score, color in (("input_score", "tab:blue"), ("output_score", "tab:orange")):
        rows = layers.drop_nulls(f"{score}_median")
        if rows.is_empty():
            continue
        shown = True
        depth = rows["depth"].to_numpy()
        ax.plot(depth, rows[f"{score}_mean"], "s--", color=color, label=f"{score} (mean)")
        if features is not None and settings is not None:
            means = rows.select("layer", "depth").join(
                mean_by_layer(features, score, settings), on="layer", how="left"
            )
            centre = means["mean"].to_numpy().astype(float)
            ax.errorbar(
                means["depth"].to_numpy(),
                centre,
                yerr=np.nan_to_num(
                    [
                        centre - means["low"].to_numpy().astype(float),
                        means["high"].to_numpy().astype(float) - centre,
                    ]
                ),
                fmt="none",
                ecolor=color,
                capsize=4,
                label=f"{score} mean, 95% bootstrap interval",
            )
        ax.plot(depth, rows[f"{score}_median"], "o-", color=color, label=f"{score} (median)")
        ax.fill_between(
            depth,
            rows[f"{score}_q25"].to_numpy(),
            rows[f"{score}_q75"].to_numpy(),
            color=color,
            alpha=0.2,
            label=f"{score} (IQR)",
        )
    chance = layers.drop_nulls("input_score_chance")
    if shown and chance.height:
        ax.plot(
            chance["depth"],
            chance["input_score_chance"],
            ":",
            color="tab:blue",
            label="input score chance level",
        )
    if not shown:
        return _no_data(ax, "input and output scores")
    ax.set_xlabel("layer / number of layers (depth)")
    ax.set_ylabel("score (0-1)")
    ax.set_xlim(0, 1.02)
    # below the axes, clear of the lines and the chance level
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)


def plot_threshold_curve(
    features: pl.DataFrame, ax, settings: BootstrapSettings | None = None
) -> None:
    """Mean GenSuccess@20 at the best factor, and features kept, against the threshold,
    with the mean's 95% bootstrap interval as a band when `settings` are given."""
    ax.set_title("Filtering by output score")
    if (
        features["gen_success_20"].drop_nulls().is_empty()
        or features["output_score"].drop_nulls().is_empty()
    ):
        return _no_data(ax, "output scores and best-factor GenSuccess@20")
    thresholds = np.logspace(-5, 0, 26)
    rows = threshold_rows(features, thresholds.tolist(), settings)
    ax.plot(
        thresholds,
        rows["mean_gen_success_20"],
        "o-",
        color="tab:green",
        markersize=3,
        label="mean GenSuccess@20 of kept steered features",
    )
    if settings is not None:
        ax.fill_between(
            thresholds,
            rows["mean_gen_success_20_low"].to_numpy().astype(float),
            rows["mean_gen_success_20_high"].to_numpy().astype(float),
            color="tab:green",
            alpha=0.2,
            label="95% bootstrap interval",
        )
    ax.set_xscale("log")
    ax.set_xlabel("output-score threshold (keep features with score >= threshold)")
    ax.set_ylabel("mean GenSuccess@20 at best factor (tokens)", color="tab:green")
    kept = ax.twinx()
    kept.plot(
        thresholds,
        100 * rows["kept_fraction"].to_numpy(),
        "--",
        color="tab:gray",
        label="features kept (%)",
    )
    kept.set_ylabel("features kept (%)", color="tab:gray")
    kept.set_ylim(0, 105)
    lines = [h for a in (ax, kept) for h in a.get_legend_handles_labels()[0]]
    ax.legend(
        lines,
        [h.get_label() for h in lines],
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.2),
        ncol=2,
    )


def plot_scatter(features: pl.DataFrame, ax) -> None:
    """Input score against output score, one point per feature, coloured by depth."""
    ax.set_title("Input vs output score")
    scored = features.drop_nulls(["input_score", "output_score"])
    if scored.is_empty():
        return _no_data(ax, "features with both scores")
    points = ax.scatter(
        scored["input_score"],
        scored["output_score"],
        c=scored["depth"],
        cmap="viridis",
        vmin=0,
        vmax=1,
        s=14,
        alpha=0.8,
    )
    ax.figure.colorbar(points, ax=ax, label="depth (layer / number of layers)")
    ax.set_xlabel("input score")
    ax.set_ylabel("output score")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)


def plot_best_factors(features: pl.DataFrame, ax) -> None:
    """How many steered features chose each steering factor, stacked by layer; the factors
    are categories (the grid is not evenly spaced), and features with no effective factor
    (GenSuccess@20 0 at every factor) have their own bar."""
    from matplotlib.ticker import MaxNLocator

    ax.set_title("Best steering factor")
    # steered: a GenSuccess@20 at a best factor, or 0 with no effective factor (null)
    steered = features.filter(pl.col("gen_success_20").is_not_null()).with_columns(
        factor=pl.col("best_factor")
        .map_elements(lambda f: f"{f:g}", return_dtype=pl.String)
        .fill_null("none")
    )
    if steered.is_empty():
        return _no_data(ax, "best factors")
    numeric = sorted({f for f in steered["factor"] if f != "none"}, key=float)
    categories = numeric + (["none"] if "none" in set(steered["factor"]) else [])
    positions = np.arange(len(categories))
    bottom = np.zeros(len(categories))
    for layer in sorted(steered["layer"].unique()):
        counts = steered.filter(pl.col("layer") == layer).group_by("factor").len()
        heights = dict(zip(counts["factor"], counts["len"], strict=True))
        values = np.array([heights.get(c, 0) for c in categories], dtype=float)
        ax.bar(positions, values, bottom=bottom, label=f"layer {layer}")
        bottom += values
    ax.set_xticks(positions, categories)
    ax.set_xlabel("best steering factor s, as categories (none: GenSuccess@20 0 at every factor)")
    ax.set_ylabel("steered features")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(
        fontsize=7, title="layer", title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1)
    )


def plot_filtering(
    features: pl.DataFrame, ax, settings: BootstrapSettings | None = None, thresholds=THRESHOLDS
) -> None:
    """Mean GenSuccess@20 at the best factor: all steered features, then after filtering,
    with 95% bootstrap intervals as error bars when `settings` are given."""
    ax.set_title("GenSuccess@20 before and after filtering")
    steered = features.drop_nulls("gen_success_20")
    if steered.is_empty():
        return _no_data(ax, "best-factor GenSuccess@20")
    rows = threshold_rows(features, thresholds, settings)
    labels = ["all"] + [f"output >= {t:g}" for t in thresholds]
    means = [weighted_gen_success(features), *rows["mean_gen_success_20"]]
    counts = [steered.height, *rows["n_steered_kept"]]
    heights = [m or 0.0 for m in means]
    errors = None
    if settings is not None:
        overall = gen_success_interval(features, settings)
        lows = [overall.low, *rows["mean_gen_success_20_low"]]
        highs = [overall.high, *rows["mean_gen_success_20_high"]]
        errors = np.array(
            [
                [h - lo if lo is not None else 0.0 for h, lo in zip(heights, lows, strict=True)],
                [hi - h if hi is not None else 0.0 for h, hi in zip(heights, highs, strict=True)],
            ]
        )
    bars = ax.bar(
        np.arange(len(labels)), heights, color="tab:green", yerr=errors, capsize=4, ecolor="black"
    )
    ax.set_xticks(np.arange(len(labels)), labels)
    for bar, mean, n in zip(bars, means, counts, strict=True):
        text = "none" if mean is None else f"{mean:.2f}\nn={n}"
        ax.annotate(
            text,
            (bar.get_x() + bar.get_width() / 4, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylabel("mean GenSuccess@20 at best factor (tokens)")
    if errors is not None:
        ax.set_xlabel("error bars: 95% bootstrap intervals over steered features")
    ax.margins(y=0.25)


# Each plot's table: the summary, every feature, or the features the findings count (the
# live ones, `findings.live_only`) with their intervals.
PLOTS: dict[str, tuple[str, Callable]] = {
    "roles_across_layers": ("summary", plot_roles),
    "output_threshold_curve": ("counted", plot_threshold_curve),
    "input_vs_output": ("features", plot_scatter),
    "best_factor_histogram": ("features", plot_best_factors),
    "gen_success_filtering": ("counted", plot_filtering),
}


def write_plots(
    features: pl.DataFrame,
    summary: pl.DataFrame,
    paths: Sequence[str | Path],
    settings: BootstrapSettings | None = None,
) -> None:
    """Each path's plot, named by its stem (a key of PLOTS); with `settings`, the
    filtering plots count what the findings count and draw their intervals."""
    live_only = settings is not None and settings.live_only
    tables = {
        "features": features,
        "counted": counted_features(features, live_only),
        "summary": summary,
    }
    unknown = [str(p) for p in paths if Path(p).stem not in PLOTS]
    if unknown:
        raise ConfigError(f"no plot named like {unknown} (known: {sorted(PLOTS)})")
    for path in paths:
        table, plot = PLOTS[Path(path).stem]
        fig, ax = _figure()
        if table == "counted":
            plot(tables[table], ax, settings)
        elif table == "summary":
            plot(tables[table], ax, features, settings)
        else:
            plot(tables[table], ax)
        _save(fig, Path(path))

"""The paper's figures from the aggregated tables (matplotlib, PNG), and the findings as
an HTML table for the report. A figure whose data is missing says so on the canvas."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from saesteer.aggregate import LAYER_FINDINGS, THRESHOLDS, threshold_rows, weighted_gen_success
from saesteer.io import atomic_path

FIGSIZE = (6.4, 4.2)


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=FIGSIZE, dpi=120)


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


def plot_roles(summary: pl.DataFrame, ax) -> None:
    """Mean, median and IQR of input and output scores per layer, layer as fraction of
    depth. The mean is drawn because on small models most features score 0, which pins
    both medians to 0 while a minority of features carries the role."""
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
    ax.legend(fontsize=8)


def plot_threshold_curve(features: pl.DataFrame, ax) -> None:
    """Mean GenSuccess@20 at the best factor, and features kept, against the threshold."""
    ax.set_title("Filtering by output score")
    if (
        features["gen_success_20"].drop_nulls().is_empty()
        or features["output_score"].drop_nulls().is_empty()
    ):
        return _no_data(ax, "output scores and best-factor GenSuccess@20")
    thresholds = np.logspace(-5, 0, 26)
    rows = threshold_rows(features, thresholds.tolist())
    ax.plot(thresholds, rows["mean_gen_success_20"], "o-", color="tab:green", markersize=3)
    ax.set_xscale("log")
    ax.set_xlabel("output-score threshold (keep features with score >= threshold)")
    ax.set_ylabel("mean GenSuccess@20 at best factor (tokens)", color="tab:green")
    kept = ax.twinx()
    kept.plot(thresholds, 100 * rows["kept_fraction"].to_numpy(), "--", color="tab:gray")
    kept.set_ylabel("features kept (%)", color="tab:gray")
    kept.set_ylim(0, 105)


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
    """How many features chose each steering factor."""
    ax.set_title("Best steering factor")
    counts = features.drop_nulls("best_factor").group_by("best_factor").len().sort("best_factor")
    if counts.is_empty():
        return _no_data(ax, "best factors")
    positions = np.arange(counts.height)  # one bar per factor tried, evenly spaced
    ax.bar(positions, counts["len"], color="tab:purple")
    ax.set_xticks(positions, [f"{f:g}" for f in counts["best_factor"]])
    ax.set_xlabel("steering factor s")
    ax.set_ylabel("features")


def plot_filtering(features: pl.DataFrame, ax, thresholds=THRESHOLDS) -> None:
    """Mean GenSuccess@20 at the best factor: all steered features, then after filtering."""
    ax.set_title("GenSuccess@20 before and after filtering")
    steered = features.drop_nulls("gen_success_20")
    if steered.is_empty():
        return _no_data(ax, "best-factor GenSuccess@20")
    rows = threshold_rows(features, thresholds)
    labels = ["all"] + [f"output >= {t:g}" for t in thresholds]
    means = [weighted_gen_success(features), *rows["mean_gen_success_20"]]
    counts = [steered.height, *rows["n_steered_kept"]]
    bars = ax.bar(np.arange(len(labels)), [m or 0.0 for m in means], color="tab:green")
    ax.set_xticks(np.arange(len(labels)), labels)
    for bar, mean, n in zip(bars, means, counts, strict=True):
        text = "none" if mean is None else f"{mean:.2f}\nn={n}"
        ax.annotate(
            text,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_ylabel("mean GenSuccess@20 at best factor (tokens)")
    ax.margins(y=0.25)


PLOTS: dict[str, tuple[str, Callable]] = {
    "roles_across_layers": ("summary", plot_roles),
    "output_threshold_curve": ("features", plot_threshold_curve),
    "input_vs_output": ("features", plot_scatter),
    "best_factor_histogram": ("features", plot_best_factors),
    "gen_success_filtering": ("features", plot_filtering),
}


def write_plots(features: pl.DataFrame, summary: pl.DataFrame, paths: Sequence[str | Path]) -> None:
    """Each path's plot, named by its stem (a key of PLOTS)."""
    tables = {"features": features, "summary": summary}
    unknown = [str(p) for p in paths if Path(p).stem not in PLOTS]
    if unknown:
        raise ValueError(f"no plot named like {unknown} (known: {sorted(PLOTS)})")
    for path in paths:
        table, plot = PLOTS[Path(path).stem]
        fig, ax = _figure()
        plot(tables[table], ax)
        _save(fig, Path(path))


def findings_html(found: dict, run: str) -> str:
    """A self-contained page: one table of the findings, one per layer, one of the
    threshold filter; its counts and layers link into the feature explorer beside it."""
    from saesteer.explorer import environment, number

    main = [
        ("Features (layers)", f"{found['n_features']} ({found['n_layers']})"),
        ("Features with both scores", number(found["n_scored_both"])),
        (
            "Fraction with input score > 0.5 and output score > 0.5",
            number(found["fraction_both_above_half"]),
        ),
        ("Pearson correlation, input vs output score", number(found["pearson_input_output"])),
        ("Spearman correlation, input vs output score", number(found["spearman_input_output"])),
        (
            "First layer whose median output score exceeds its median input score",
            number(found["first_layer_output_above_input"]),
        ),
        (
            "First layer whose mean output score exceeds its mean input score",
            number(found["first_layer_mean_output_above_input"]),
        ),
        ("Layer with the highest mean input score", number(found["peak_input_layer"])),
        ("Layer with the highest mean output score", number(found["peak_output_layer"])),
        (
            "Mean GenSuccess@20 at the best factor, steered features weighted",
            f"{number(found['mean_gen_success_20'])} (n={found['n_steered']})",
        ),
    ]
    return (
        environment()
        .get_template("findings.html.j2")
        .render(
            run=run,
            main=main,
            layers=found["layers"],
            layer_keys=LAYER_FINDINGS,
            thresholds=found["thresholds"],
            threshold_keys=(
                "threshold",
                "n_kept",
                "kept_fraction",
                "n_steered_kept",
                "mean_gen_success_20",
                "gain",
                "ratio",
            ),
        )
    )

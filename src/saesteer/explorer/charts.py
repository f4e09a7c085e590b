"""The coordinates of a feature page's SVG charts: the histogram of its activations on
the corpus, and GenSuccess@20 and perplexity against the steering factor."""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from saesteer.io import is_finite_number

# The steering plot's canvas (SVG user units).
PLOT_WIDTH, PLOT_HEIGHT = 460, 230
PLOT_MARGIN = {"left": 58, "right": 70, "top": 14, "bottom": 38}


def _nice_ticks(high: float, most: int = 5) -> list[float]:
    """Ticks from 0 at a round step (1, 2, 2.5 or 5 times a power of ten) whose last one
    reaches `high`: at most `most` + 1 of them."""
    high = max(high, 1e-12)
    for power in range(math.floor(math.log10(high / most)), math.floor(math.log10(high)) + 2):
        for base in (1, 2, 2.5, 5):
            step = base * 10**power
            if math.ceil(high / step - 1e-9) <= most:
                n = math.ceil(high / step - 1e-9)
                return [round(i * step, 12) for i in range(n + 1)]
    return [0.0, high]


HISTOGRAM_WIDTH, HISTOGRAM_HEIGHT = 460, 160


def _short(value: float) -> str:
    """A tick label of at most 4 characters: 0.125, 0.5, 64, 512, 2k, 16k."""
    if value >= 1000:
        return f"{value / 1024:g}k"
    return f"{value:.3g}"


def activation_histogram(
    counts: Sequence[int] | None, edges: Sequence[float] | None
) -> dict | None:
    """Bars of the feature's activations on the corpus, over the bins from its first to its
    last non-empty one (log-spaced: half-octaves), each bar's height its count; None
    without a histogram or when it never fired."""
    counts = None if counts is None else list(counts)
    edges = None if edges is None else list(edges)
    if not counts or not edges or not any(counts):
        return None
    first = next(i for i, c in enumerate(counts) if c)
    last = len(counts) - 1 - next(i for i, c in enumerate(reversed(counts)) if c)
    shown = counts[first : last + 1]
    left, top, bottom_margin = 58, 10, 38
    width = HISTOGRAM_WIDTH - left - 14
    height = HISTOGRAM_HEIGHT - top - bottom_margin
    ticks = _nice_ticks(max(shown), most=4)
    step = width / len(shown)
    bottom = top + height
    return {
        "width": HISTOGRAM_WIDTH,
        "height": HISTOGRAM_HEIGHT,
        "left": left,
        "right": left + width,
        "top": top,
        "bottom": bottom,
        "bars": [
            {
                "x": left + i * step,
                "width": step,
                "y": bottom - height * c / ticks[-1],
                "height": height * c / ticks[-1],
                "count": c,
                "low": edges[first + i],
                "high": edges[first + i + 1],
            }
            for i, c in enumerate(shown)
        ],
        "count_ticks": [{"y": bottom - height * v / ticks[-1], "label": f"{v:g}"} for v in ticks],
        # every other edge is a whole power of two: ticked, the others not
        "edge_ticks": [
            {"x": left + i * step, "label": _short(edges[first + i])}
            for i in range(len(shown) + 1)
            if i % 2 == (first % 2)
        ],
        "total": sum(counts),
    }


def _loggable(value) -> bool:
    return is_finite_number(value) and value > 0


def steering_plot(metrics: pl.DataFrame, best_factor: float | None) -> dict | None:
    """Coordinates of the plot of GenSuccess@20 (left axis, linear from 0) and perplexity
    (right axis, log) against the steering factor, factors evenly spaced as tried; None
    without metrics."""
    rows = metrics.sort("factor")
    if rows.is_empty():
        return None
    left, top = PLOT_MARGIN["left"], PLOT_MARGIN["top"]
    width = PLOT_WIDTH - left - PLOT_MARGIN["right"]
    height = PLOT_HEIGHT - top - PLOT_MARGIN["bottom"]
    factors = rows["factor"].to_list()
    step = width / max(1, len(factors) - 1)
    xs = [left + i * step for i in range(len(factors))] if len(factors) > 1 else [left + width / 2]

    success = rows["gen_success_20"].to_list()
    gs_ticks = _nice_ticks(max([v for v in success if v is not None] + [1.0]))
    top_success = gs_ticks[-1]

    def y_success(v):
        return top + height * (1 - v / top_success)

    perplexity = [v for v in rows["perplexity"].to_list()]
    finite = [v for v in perplexity if _loggable(v)]
    lo, hi = (math.log10(min(finite)), math.log10(max(finite))) if finite else (0.0, 1.0)
    # whole decades, ticked at each power of ten
    lo, hi = math.floor(lo), math.ceil(hi)
    if hi == lo:
        hi = lo + 1

    def y_perplexity(v):
        return top + height * (1 - (math.log10(v) - lo) / (hi - lo))

    best_x = None
    if best_factor is not None:
        best_x = next((x for x, f in zip(xs, factors, strict=True) if f == best_factor), None)
    return {
        "width": PLOT_WIDTH,
        "height": PLOT_HEIGHT,
        "left": left,
        "right": left + width,
        "top": top,
        "bottom": top + height,
        "x_ticks": [{"x": x, "label": f"{f:g}"} for x, f in zip(xs, factors, strict=True)],
        "success": [
            {"x": x, "y": y_success(v), "value": v, "factor": f}
            for x, v, f in zip(xs, success, factors, strict=True)
            if v is not None
        ],
        "success_ticks": [{"y": y_success(v), "label": f"{v:g}"} for v in gs_ticks],
        "perplexity": [
            {"x": x, "y": y_perplexity(v), "value": v, "factor": f}
            for x, v, f in zip(xs, perplexity, factors, strict=True)
            if _loggable(v)
        ],
        "perplexity_ticks": [
            {"y": y_perplexity(10**e), "label": f"{10**e:g}"} for e in range(lo, hi + 1)
        ],
        "best_x": best_x,
        "best_factor": best_factor,
    }

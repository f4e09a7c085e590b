"""A page's charts: the steering plot's and the histogram's coordinates at their axes'
ends, and their ticks."""

from __future__ import annotations

import polars as pl
import pytest

from saesteer.explorer.charts import steering_plot


def test_steering_plot_places_points_on_its_axes():
    metrics = pl.DataFrame(
        {
            "factor": [4.0, 0.0, 2.0],
            "gen_success_20": [3.0, 0.0, None],
            "perplexity": [1000.0, 10.0, 100.0],
        }
    )
    plot = steering_plot(metrics, 2.0)
    xs = [t["x"] for t in plot["x_ticks"]]
    assert [t["label"] for t in plot["x_ticks"]] == ["0", "2", "4"]
    assert xs[0] == plot["left"] and xs[-1] == plot["right"]
    assert xs[1] == pytest.approx((plot["left"] + plot["right"]) / 2)
    assert plot["best_x"] == xs[1]
    success = {p["factor"]: p["y"] for p in plot["success"]}
    assert set(success) == {0.0, 4.0}  # a missing value draws no point
    assert success[0.0] == plot["bottom"] and success[4.0] == plot["top"]  # axis 0..3
    perplexity = {p["factor"]: p["y"] for p in plot["perplexity"]}
    assert perplexity[0.0] == pytest.approx(plot["bottom"])
    assert perplexity[4.0] == pytest.approx(plot["top"])
    assert perplexity[2.0] == pytest.approx((plot["top"] + plot["bottom"]) / 2)  # log scale
    assert steering_plot(metrics, 5.0)["best_x"] is None
    assert steering_plot(metrics.clear(), 2.0) is None
    assert [t["label"] for t in plot["success_ticks"]] == ["0", "1", "2", "3"]
    assert [t["label"] for t in plot["perplexity_ticks"]] == ["10", "100", "1000"]
    # round ticks for values that are not: the axis ends at the first round one above
    odd = pl.DataFrame(
        {"factor": [0.0, 1.0], "gen_success_20": [0.6, 12.9], "perplexity": [26.0, 124.0]}
    )
    plot = steering_plot(odd, None)
    assert [t["label"] for t in plot["success_ticks"]] == ["0", "5", "10", "15"]
    assert [t["label"] for t in plot["perplexity_ticks"]] == ["10", "100", "1000"]
    assert plot["success_ticks"][-1]["y"] == plot["top"]


def test_activation_histogram_spans_the_bins_where_the_feature_fired():
    from saesteer.explorer.charts import activation_histogram
    from saesteer.mining import HISTOGRAM_EDGES

    counts = [0] * (len(HISTOGRAM_EDGES) - 1)
    counts[20], counts[21], counts[23] = 3, 1, 6  # (1, 1.41], (1.41, 2], (2.83, 4]
    shown = activation_histogram(counts, HISTOGRAM_EDGES)
    assert [b["count"] for b in shown["bars"]] == [3, 1, 0, 6]
    assert (shown["bars"][0]["low"], shown["bars"][-1]["high"]) == (1.0, 4.0)
    assert shown["total"] == 10
    tallest = max(shown["bars"], key=lambda b: b["height"])
    assert tallest["count"] == 6 and tallest["y"] >= shown["top"]
    assert [t["label"] for t in shown["count_ticks"]][-1] in {"6", "8", "10"}
    assert [t["label"] for t in shown["edge_ticks"]] == ["1", "2", "4"]  # whole powers of 2
    wide = [0] * (len(HISTOGRAM_EDGES) - 1)
    wide[40] = wide[45] = 1  # (1024, 1448] and (5793, 8192]
    assert [t["label"] for t in activation_histogram(wide, HISTOGRAM_EDGES)["edge_ticks"]] == [
        "1k", "2k", "4k", "8k",
    ]  # fmt: skip
    assert activation_histogram([0] * (len(HISTOGRAM_EDGES) - 1), HISTOGRAM_EDGES) is None
    assert activation_histogram(None, None) is None

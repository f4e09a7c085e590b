"""The explorer's front page: one row per feature of the run, each linked to its page,
and the input-vs-output scatter over them."""

from __future__ import annotations

import polars as pl

from saesteer.io import is_finite_number


def page_path(layer: int, feature: int) -> str:
    """A feature's page, relative to the explorer's folder."""
    return f"layers/{layer}/{feature}.html"


def index_rows(features: pl.DataFrame, descriptions: pl.DataFrame | None) -> list[dict]:
    """One row per feature of the run's features.parquet, with its description if any."""
    rows = features.select(
        "layer",
        "feature",
        "input_score",
        "output_score",
        "best_factor",
        "effective_factor",
        "gen_success_20",
        "live",
        pl.col("logit_lens_tokens").list.head(5).list.join(" | ").alias("tokens"),
    )
    if descriptions is not None and not descriptions.is_empty():
        rows = rows.join(
            descriptions.select("layer", "feature", pl.col("concept").alias("description")),
            on=["layer", "feature"],
            how="left",
        )
    else:
        rows = rows.with_columns(description=pl.lit(None, pl.String))
    rows = rows.sort("layer", "feature").to_dicts()
    for row in rows:
        row["href"] = page_path(row["layer"], row["feature"])
    return rows


# matplotlib's tab10, so a layer's colour here is its colour in the report's plots
LAYER_COLOURS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
]  # fmt: skip


def scatter(rows: list[dict]) -> dict:
    """Coordinates of the input-vs-output scatter of the index, each point a page link
    coloured by its layer and keyed like its table row, so the table's filters hide it."""
    size, margin = 320, 40
    inner = size - 2 * margin

    def place(v):
        return margin + inner * min(1.0, max(0.0, v))

    layers = sorted({r["layer"] for r in rows})
    colour = {layer: LAYER_COLOURS[i % len(LAYER_COLOURS)] for i, layer in enumerate(layers)}
    return {
        "size": size,
        "margin": margin,
        "inner": inner,
        "ticks": [{"at": place(v), "label": f"{v:g}"} for v in (0, 0.25, 0.5, 0.75, 1)],
        "legend": [{"layer": layer, "colour": colour[layer]} for layer in layers],
        "points": [
            {
                "x": place(r["input_score"]),
                "y": size - place(r["output_score"]),
                "href": r["href"],
                "key": f"{r['layer']}:{r['feature']}",
                "colour": colour[r["layer"]],
                "title": f"layer {r['layer']}, feature {r['feature']}",
            }
            for r in rows
            if is_finite_number(r["input_score"]) and is_finite_number(r["output_score"])
        ],
    }

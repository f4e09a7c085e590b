"""The generations table (generations.parquet): its columns, and the step that turns rows
of (feature, factor, prefix_id, continuation, n_tokens, seed) into it.

Torch-free, so that what only reads or imports texts (the paper's released generations,
saesteer.released) does not import torch; saesteer.generation uses it for sampled texts.
"""

from __future__ import annotations

import polars as pl

GENERATIONS_SCHEMA = {
    "layer": pl.Int32,
    "feature": pl.Int64,
    "factor": pl.Float64,
    "prefix_id": pl.Int32,
    "prefix": pl.Utf8,
    "text": pl.Utf8,  # prefix + continuation, as in the paper's released generations
    "continuation": pl.Utf8,
    "n_tokens": pl.Int32,  # generated tokens, the stop token included
    "seed": pl.Int64,  # the row's random stream (null for imported texts)
    "source": pl.Utf8,  # "sampled", or the released file the text came from
}


def generations_frame(layer: int, frame: pl.DataFrame, prefixes: list[str], source) -> pl.DataFrame:
    """Add layer, prefix, text and source to (feature, factor, prefix_id, continuation,
    n_tokens, seed) rows, sorted by feature, factor and prefix."""
    frame = frame.with_columns(
        layer=pl.lit(layer),
        prefix=pl.col("prefix_id").map_elements(prefixes.__getitem__, return_dtype=pl.Utf8),
        source=pl.lit(source) if isinstance(source, str) else source,
    ).with_columns(text=pl.col("prefix") + pl.col("continuation"))
    return (
        frame.sort("feature", "factor", "prefix_id", maintain_order=True)
        .select(list(GENERATIONS_SCHEMA))
        .cast(GENERATIONS_SCHEMA)
    )

"""All layers' Parquet files joined into one row per feature (FEATURE_TABLE_SCHEMA).

A stage whose file is missing (not run, or not configured, e.g. SAE metrics of a
downloaded SAE) gives null columns, never zeros.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from saesteer.artifacts import read_artifact
from saesteer.errors import DataFileError
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


def _read(path: str | Path | None) -> pl.DataFrame | None:
    return read_artifact(path) if path is not None and Path(path).is_file() else None


def layer_table(layer: int, n_layers: int, files: Mapping[str, str | Path | None]) -> pl.DataFrame:
    """One layer's features with every stage's columns; `files` maps a kind (features,
    logit_lens, sae_metrics and the keys of LAYER_FILES) to its Parquet path or None."""
    features = _read(files.get("features"))
    if features is None:
        raise DataFileError(f"layer {layer}: no features file {files.get('features')}")
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

"""The SAE sweep's table: per variant and layer, the SAE's quality and its features' roles
(input and output scores, activation density), and whether the variant passes the gates a
run's SAEs are chosen by (docs/results.md, "The SAE sweep")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl

from saesteer.aggregate.join import SAE_METRICS
from saesteer.artifacts import read_artifact
from saesteer.io import read_json
from saesteer.plots import pyplot
from saesteer.stats import BootstrapSettings, interval

SWEEP_SCHEMA = {
    "variant": pl.Utf8,
    "layer": pl.Int32,
    "architecture": pl.Utf8,
    "d_sae": pl.Int64,
    "k": pl.Int64,
    "aux_loss_coefficient": pl.Float64,
    "init": pl.Utf8,
    "lr": pl.Float64,
    "training_tokens": pl.Int64,
    "activation_tokens": pl.Int64,
    "variance_explained": pl.Float64,
    "ce_loss_recovered": pl.Float64,
    "l0": pl.Float64,
    "dead_fraction": pl.Float64,  # never fires on the training tokens
    "silent_fraction": pl.Float64,  # never fires on the held-out tokens (dead or rare)
    "n_features": pl.Int64,
    "n_live": pl.Int64,  # fired on >= input_score.min_examples examples
    "density_median": pl.Float64,  # over all sampled features
    "input_score_median": pl.Float64,  # over live features (the scored ones)
    "input_score_mean": pl.Float64,
    "input_score_chance": pl.Float64,
    "share_above_chance": pl.Float64,
    "share_above_chance_low": pl.Float64,
    "share_above_chance_high": pl.Float64,
    "n_input_above_half": pl.Int64,
    "output_score_median": pl.Float64,  # over live features
    "n_output_at_least_0_1": pl.Int64,  # live features with output score >= 0.1
    "output_score_median_not_live": pl.Float64,  # what a never-firing latent scores
    "passes": pl.Boolean,  # the variant passes every gate (same value on its rows)
    "failed_gates": pl.Utf8,  # which not, "" when it passes
}


@dataclass(frozen=True)
class Gates:
    SECTIONS: ClassVar = ("sae_sweep.gates",)
    early_above_chance: float
    early_input_median: float
    late_output_ratio: float
    min_ce_loss_recovered: float
    max_dead_fraction: float


def layer_row(variant: str, folder: Path, bootstrap: BootstrapSettings) -> dict:
    """One variant's roles and quality at one layer, from its sweep folder."""
    sae = read_json(folder / "sae.json")
    train = sae.get("train", {})
    metrics = read_artifact(folder / "sae_metrics.parquet").row(0, named=True)
    inputs = read_artifact(folder / "input_scores.parquet")
    table = (
        read_artifact(folder / "features.parquet")
        .select("feature")
        .join(inputs.select("feature", "input_score", "input_score_chance"), on="feature")
        .join(
            read_artifact(folder / "output_scores.parquet").select("feature", "output_score"),
            on="feature",
        )
        .join(
            read_artifact(folder / "densities.parquet").select("feature", "density"), on="feature"
        )
    )
    live = table.filter(pl.col("input_score").is_not_null())
    above = (live["input_score"] > live["input_score_chance"]).to_numpy().astype(float)
    share = interval(lambda i: above[i].mean(), np.zeros(len(above)), bootstrap)
    chance = inputs["input_score_chance"].drop_nulls()
    return {
        "variant": variant,
        "layer": int(sae["layer"]),
        "architecture": train.get("architecture", sae.get("architecture")),
        "d_sae": int(sae["d_sae"]),
        "k": train.get("k"),
        "aux_loss_coefficient": train.get("aux_loss_coefficient"),
        "init": train.get("init", "sae-lens"),
        "lr": train.get("lr"),
        "training_tokens": train.get("training_tokens"),
        "activation_tokens": train.get("activation_tokens"),
        **{c: metrics.get(c) for c in SAE_METRICS},
        "n_features": table.height,
        "n_live": live.height,
        "density_median": table["density"].median(),
        "input_score_median": live["input_score"].median(),
        "input_score_mean": live["input_score"].mean(),
        "input_score_chance": chance[0] if chance.len() else None,
        "share_above_chance": share.value,
        "share_above_chance_low": share.low,
        "share_above_chance_high": share.high,
        "n_input_above_half": int((live["input_score"] > 0.5).sum()),
        "output_score_median": live["output_score"].median(),
        "n_output_at_least_0_1": int((live["output_score"] >= 0.1).sum()),
        "output_score_median_not_live": table.filter(pl.col("input_score").is_null())[
            "output_score"
        ].median(),
    }


def failed_gates(rows: list[dict], gates: Gates) -> list[str]:
    """The gates one variant's rows (one per layer) fail, each said with its number."""
    by_layer = sorted(rows, key=lambda r: r["layer"])
    early, late = by_layer[0], by_layer[-1]
    failed = []

    def below(value, bound) -> bool:
        return value is None or value < bound

    if below(early["share_above_chance"], gates.early_above_chance):
        failed.append(
            f"layer {early['layer']}: {_num(early['share_above_chance'])} of scored features "
            f"above chance < {gates.early_above_chance:g}"
        )
    if below(early["input_score_median"], gates.early_input_median):
        failed.append(
            f"layer {early['layer']}: median input score {_num(early['input_score_median'])} "
            f"< {gates.early_input_median:g}"
        )
    if len(by_layer) > 1:
        bound = gates.late_output_ratio * (early["output_score_median"] or 0.0)
        if below(late["output_score_median"], bound) or not late["output_score_median"]:
            failed.append(
                f"layer {late['layer']}: median output score "
                f"{_num(late['output_score_median'])} < {gates.late_output_ratio:g} x layer "
                f"{early['layer']}'s {_num(early['output_score_median'])}"
            )
    for row in by_layer:
        if below(row["ce_loss_recovered"], gates.min_ce_loss_recovered):
            failed.append(
                f"layer {row['layer']}: CE loss recovered {_num(row['ce_loss_recovered'])} "
                f"< {gates.min_ce_loss_recovered:g}"
            )
        if row["dead_fraction"] is None or row["dead_fraction"] > gates.max_dead_fraction:
            failed.append(
                f"layer {row['layer']}: dead {_num(row['dead_fraction'])} "
                f"> {gates.max_dead_fraction:g}"
            )
    return failed


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def sweep_table(
    folders: Mapping[str, list[Path]], gates: Gates, bootstrap: BootstrapSettings
) -> pl.DataFrame:
    """SWEEP_SCHEMA rows, by variant (in the config's order) and layer."""
    rows = []
    for variant, paths in folders.items():
        own = [layer_row(variant, Path(p), bootstrap) for p in paths]
        failed = failed_gates(own, gates)
        for row in sorted(own, key=lambda r: r["layer"]):
            rows.append({**row, "passes": not failed, "failed_gates": "; ".join(failed)})
    return pl.DataFrame(rows, schema=SWEEP_SCHEMA)


def plot_sweep(table: pl.DataFrame, path: Path) -> None:
    """Per variant: the earliest layer's share of features above chance (with its
    interval) and the latest layer's median output score, side by side."""
    plt = pyplot()
    variants = table["variant"].unique(maintain_order=True).to_list()
    early, late = table["layer"].min(), table["layer"].max()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    x = np.arange(len(variants))
    rows = {(r["variant"], r["layer"]): r for r in table.iter_rows(named=True)}
    shares = [rows[(v, early)]["share_above_chance"] or 0.0 for v in variants]
    lows = [rows[(v, early)]["share_above_chance_low"] for v in variants]
    highs = [rows[(v, early)]["share_above_chance_high"] for v in variants]
    errors = np.array(
        [
            [s - lo if lo is not None else 0 for s, lo in zip(shares, lows, strict=True)],
            [hi - s if hi is not None else 0 for s, hi in zip(shares, highs, strict=True)],
        ]
    )
    colours = ["tab:green" if rows[(v, early)]["passes"] else "tab:gray" for v in variants]
    left.bar(x, shares, yerr=errors, capsize=4, color=colours)
    left.set_xticks(x, variants, rotation=30, ha="right")
    left.set_ylabel(f"layer {early}: share of scored features above chance")
    left.set_ylim(0, 1)
    left.set_title("Input features (earliest layer)")
    outputs = [rows[(v, late)]["output_score_median"] or 0.0 for v in variants]
    right.bar(x, outputs, color=colours)
    right.set_xticks(x, variants, rotation=30, ha="right")
    right.set_ylabel(f"layer {late}: median output score (live features)")
    right.set_title("Output features (latest layer)")
    fig.suptitle("SAE sweep (green: passes every gate; error bars: 95% bootstrap intervals)")
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)

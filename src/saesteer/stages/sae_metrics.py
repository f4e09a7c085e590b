"""Stage `sae_metrics`: one layer's SAE quality on held-out text (variance explained, L0,
silent latents, CE loss recovered) and its dead latents on the training text."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

import polars as pl
import torch

from saesteer.corpus import read_chunks
from saesteer.io import write_parquet
from saesteer.residuals import read_residuals
from saesteer.sae_metrics import SAE_METRICS_SCHEMA, sae_metrics
from saesteer.saes import load_layer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SaeMetricsSettings:
    SECTIONS: ClassVar = ("sae_metrics",)
    max_tokens: int  # held out: reconstruction, L0 and silent latents
    dead_tokens: int  # from the training split: dead latents
    ce_tokens: int  # for the CE metrics (3 full forwards each)
    batch_size: int


def run(
    *,
    model: Annotated[Path, "model.json"],
    sae: Annotated[Path, "the layer's sae.json"],
    chunks: Annotated[Path, "chunks.parquet"],
    residuals: Annotated[Path, "the layer's residual cache"],
    settings: SaeMetricsSettings,
    device: str = "auto",
    out: Annotated[Path, "sae_metrics.parquet"],
) -> None:
    target = load_layer(model, sae, device)
    layer = target.layer
    heldout = read_chunks(chunks, "heldout")
    heldout = torch.from_numpy(heldout[: max(1, settings.max_tokens // heldout.shape[1])])
    cached = read_residuals(residuals, "heldout", layer, len(heldout))
    train = read_chunks(chunks, "train")
    wanted = max(1, settings.dead_tokens // (train.shape[1] - 1))
    train_cached = read_residuals(residuals, "train", layer, at_most=wanted)
    train_part = (torch.from_numpy(train[: len(train_cached)]), train_cached)
    metrics = sae_metrics(
        target.model,
        target.sae,
        layer,
        heldout,
        cached,
        target.tokenizer.all_special_ids,
        max(1, settings.ce_tokens // heldout.shape[1]),
        settings.batch_size,
        train_part,
    )
    write_parquet(pl.DataFrame([metrics]), out, SAE_METRICS_SCHEMA)
    log.info("layer %d: %s", layer, metrics)

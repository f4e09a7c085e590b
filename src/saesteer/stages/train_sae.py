"""Stage `train_sae`: train one layer's SAE with SAE-Lens on its cached residuals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from saesteer.corpus import read_chunks
from saesteer.models import load_tokenizer, resolve_device
from saesteer.residuals import read_residuals
from saesteer.train import TrainSettings, train_sae


def run(
    *,
    model: Annotated[Path, "model.json (the tokenizer's special ids)"],
    chunks: Annotated[Path, "chunks.parquet"],
    residuals: Annotated[Path, "the layer's residual cache"],
    layer: int,
    settings: TrainSettings,
    device: str = "auto",
    out: Annotated[Path, "the SAE directory"],
) -> None:
    train_chunks = read_chunks(chunks, "train")
    cached = read_residuals(residuals, "train", layer)
    train_sae(
        cached,
        train_chunks[: len(cached)],
        load_tokenizer(model).all_special_ids,
        layer,
        settings,
        out,
        resolve_device(device),
    )

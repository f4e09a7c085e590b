"""Stage `residuals`: one model pass over the corpus that caches the block outputs of every
layer that some later stage reads (training, mining, SAE metrics): a file per layer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

from saesteer.corpus import read_chunks
from saesteer.io import read_json
from saesteer.models import load_model
from saesteer.residuals import cache_residuals

log = logging.getLogger(__name__)

# Chunks per forward: speed only, the cached values do not depend on it.
BATCH_SIZE = 16


@dataclass(frozen=True)
class ResidualSettings:
    """Set by the workflow from what the cache's readers need (`residuals.ResidualSizes`)."""

    SECTIONS: ClassVar = ()
    layers: tuple[int, ...]
    train_chunks: int | None  # None: all of them
    heldout_chunks: int


def run(
    *,
    model: Annotated[Path, "model.json"],
    chunks: Annotated[Path, "chunks.parquet"],
    settings: ResidualSettings,
    device: str = "auto",
    out: Annotated[list[Path], "one file per layer, in the order of settings.layers"],
) -> None:
    info = read_json(model)
    train = read_chunks(chunks, "train")
    heldout = read_chunks(chunks, "heldout")
    wanted = {"train": settings.train_chunks, "heldout": settings.heldout_chunks}
    parts = {
        "train": train if settings.train_chunks is None else train[: settings.train_chunks],
        "heldout": heldout[: settings.heldout_chunks],
    }
    for split, n in wanted.items():
        if n and len(parts[split]) < n:
            log.warning(
                "%s has %d %s chunks, fewer than the %d asked", chunks, len(parts[split]), split, n
            )
    lm, _ = load_model(info["path"], info["dtype"], device, with_tokenizer=False)
    cache_residuals(lm, info["path"], list(settings.layers), parts, out, BATCH_SIZE)

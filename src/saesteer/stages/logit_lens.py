"""Stage `logit_lens`: each feature's top-k logit-lens tokens (its decoder row through the
final norm and unembedding)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

from saesteer.artifacts import read_artifact
from saesteer.io import write_parquet
from saesteer.logit_lens import LOGIT_LENS_SCHEMA, logit_lens_frame, logit_lens_topk
from saesteer.saes import load_layer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogitLensSettings:
    SECTIONS: ClassVar = ("logit_lens",)
    top_k: int
    batch_size: int


def run(
    *,
    model: Annotated[Path, "model.json"],
    sae: Annotated[Path, "the layer's sae.json"],
    features: Annotated[Path, "the layer's features.parquet"],
    settings: LogitLensSettings,
    device: str = "auto",
    out: Annotated[Path, "logit_lens.parquet"],
) -> None:
    write_lens(model, sae, features, settings, device, out, lowest=False)


def write_lens(
    model: Path,
    sae: Path,
    features: Path,
    settings: LogitLensSettings,
    device: str,
    out: Path,
    lowest: bool,
) -> None:
    """The logit lens of the layer's features to `out`: the top-k tokens, or with `lowest`
    the k of lowest logit (stage `negative_logits`)."""
    ids = read_artifact(features)["feature"].to_list()
    target = load_layer(model, sae, device)
    layer = target.layer
    top, probs, logits = logit_lens_topk(
        target.model, target.sae.W_dec, ids, settings.top_k, settings.batch_size, lowest=lowest
    )
    frame = logit_lens_frame(layer, ids, top, probs, target.tokenizer, logits)
    write_parquet(frame, out, LOGIT_LENS_SCHEMA)
    what = "negative logits" if lowest else "logit lens"
    log.info("layer %d: %s of %d features", layer, what, len(ids))

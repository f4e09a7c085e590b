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
    ids = read_artifact(features)["feature"].to_list()
    lm, tokenizer, layer_sae, layer = load_layer(model, sae, device)
    top, probs, logits = logit_lens_topk(
        lm, layer_sae.W_dec, ids, settings.top_k, settings.batch_size
    )
    frame = logit_lens_frame(layer, ids, top, probs, tokenizer, logits)
    write_parquet(frame, out, LOGIT_LENS_SCHEMA)
    log.info("layer %d: logit lens of %d features", layer, len(ids))

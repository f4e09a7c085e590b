"""Stage `negative_logits`: each feature's logit-lens tokens of lowest logit, the ones its
decoder row pushes down (Neuronpedia's negative logits), for the feature pages only. Its
own artifact, so adding it to a finished run reruns no score."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from saesteer.artifacts import read_artifact
from saesteer.io import write_parquet
from saesteer.logit_lens import LOGIT_LENS_SCHEMA, logit_lens_frame, logit_lens_topk
from saesteer.saes import load_layer
from saesteer.stages.logit_lens import LogitLensSettings

log = logging.getLogger(__name__)


def run(
    *,
    model: Annotated[Path, "model.json"],
    sae: Annotated[Path, "the layer's sae.json"],
    features: Annotated[Path, "the layer's features.parquet"],
    settings: LogitLensSettings,
    device: str = "auto",
    out: Annotated[Path, "negative_logits.parquet (rank 0: the lowest logit)"],
) -> None:
    ids = read_artifact(features)["feature"].to_list()
    lm, tokenizer, layer_sae, layer = load_layer(model, sae, device)
    low, probs, logits = logit_lens_topk(
        lm, layer_sae.W_dec, ids, settings.top_k, settings.batch_size, lowest=True
    )
    frame = logit_lens_frame(layer, ids, low, probs, tokenizer, logits)
    write_parquet(frame, out, LOGIT_LENS_SCHEMA)
    log.info("layer %d: negative logits of %d features", layer, len(ids))

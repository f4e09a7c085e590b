"""Stage `negative_logits`: each feature's logit-lens tokens of lowest logit, the ones its
decoder row pushes down (Neuronpedia's negative logits), for the feature pages only. Its
own artifact, so adding it to a finished run reruns no score."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from saesteer.stages.logit_lens import LogitLensSettings, write_lens


def run(
    *,
    model: Annotated[Path, "model.json"],
    sae: Annotated[Path, "the layer's sae.json"],
    features: Annotated[Path, "the layer's features.parquet"],
    settings: LogitLensSettings,
    device: str = "auto",
    out: Annotated[Path, "negative_logits.parquet (rank 0: the lowest logit)"],
) -> None:
    write_lens(model, sae, features, settings, device, out, lowest=True)

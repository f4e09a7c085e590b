"""Stage `sae_sweep`: one variant's SAE at one layer (trained by rule `train_sae` from the
run's residual cache), scored on the same protocol as the run's own layers, by the same
stages: its features, SAE quality, logit lens, output scores, mined examples with activation
densities, and input scores, all in one folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from saesteer.input_score import InputScoreSettings
from saesteer.io import atomic_dir, write_json
from saesteer.output_score import OutputScoreSettings
from saesteer.saes import sae_source
from saesteer.settings import settings_for
from saesteer.stages import (
    activations,
    features,
    input_scores,
    logit_lens,
    output_scores,
    sae_metrics,
)

log = logging.getLogger(__name__)

# The sections of `settings`, each the run's config section of that name (the rule passes
# the run's own, so a sweep variant is scored exactly as the run's layers are).
SECTIONS = (
    "train",
    "features",
    "sae_metrics",
    "logit_lens",
    "output_score",
    "activations",
    "input_score",
)


def run(
    *,
    model: Annotated[Path, "model.json"],
    chunks: Annotated[Path, "chunks.parquet"],
    residuals: Annotated[Path, "the layer's residual cache"],
    sae_dir: Annotated[Path, "the variant's trained SAE directory (rule train_sae)"],
    layer: int,
    settings: Annotated[
        dict,
        "JSON with the variant's sae.train settings (train), the layer's feature spec "
        "(features), and the run's sae_metrics, logit_lens, output_score, activations and "
        "input_score sections",
    ],
    device: str = "auto",
    out: Annotated[Path, "the variant's folder for this layer: sweep/<variant>/layers/<L>"],
) -> None:
    with atomic_dir(out) as folder:
        sae = folder / "sae.json"
        described = sae_source("train").describe(
            {"source": "train", "path": str(sae_dir), "train": settings["train"]}, layer
        )
        write_json(described, sae)
        features.run(
            layer=layer, sae=sae, settings=settings["features"], out=folder / "features.parquet"
        )
        common = {"model": model, "sae": sae, "device": device}
        sae_metrics.run(
            **common,
            chunks=chunks,
            residuals=residuals,
            settings=settings_for(sae_metrics.SaeMetricsSettings, settings["sae_metrics"]),
            out=folder / "sae_metrics.parquet",
        )
        logit_lens.run(
            **common,
            features=folder / "features.parquet",
            settings=settings_for(logit_lens.LogitLensSettings, settings["logit_lens"]),
            out=folder / "logit_lens.parquet",
        )
        output_scores.run(
            **common,
            logit_lens=folder / "logit_lens.parquet",
            settings=settings_for(OutputScoreSettings, settings["output_score"]),
            out=folder / "output_scores.parquet",
            out_by_prompt=folder / "output_scores_by_prompt.parquet",
        )
        activations.run(
            **common,
            layer=layer,
            features=folder / "features.parquet",
            chunks=chunks,
            residuals=residuals,
            settings=settings_for(activations.ActivationSettings, settings["activations"]),
            out=folder / "activations.parquet",
            out_densities=folder / "densities.parquet",
        )
        input_scores.run(
            model=model,
            logit_lens=folder / "logit_lens.parquet",
            activations=folder / "activations.parquet",
            chunks=chunks,
            settings=settings_for(InputScoreSettings, settings["input_score"]),
            out=folder / "input_scores.parquet",
        )
    log.info("layer %d: %s scored in %s", layer, sae_dir.name, out)

"""Stage `output_scores`: how much amplifying each feature raises its logit-lens tokens in
the next-token distribution (the paper's output score), per prompt and overall."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import polars as pl
import torch

from saesteer.artifacts import read_artifact
from saesteer.errors import ConfigError
from saesteer.io import write_parquet
from saesteer.output_score import (
    OUTPUT_SCORES_BY_PROMPT_SCHEMA,
    OUTPUT_SCORES_SCHEMA,
    OutputScoreSettings,
    robustness_correlation,
    score_output,
)
from saesteer.saes import load_layer

log = logging.getLogger(__name__)


def run(
    *,
    model: Annotated[Path, "model.json"],
    sae: Annotated[Path, "the layer's sae.json"],
    logit_lens: Annotated[Path, "the layer's logit_lens.parquet"],
    settings: OutputScoreSettings,
    device: str = "auto",
    out: Annotated[Path, "output_scores.parquet"],
    out_by_prompt: Annotated[Path, "output_scores_by_prompt.parquet"],
) -> None:
    write_output_scores(model, sae, logit_lens, settings, device, out, out_by_prompt)


def write_output_scores(
    model_path: Path,
    sae_path: Path,
    logit_lens_path: Path,
    settings: OutputScoreSettings,
    device: str,
    out_path: Path,
    out_by_prompt_path: Path,
) -> None:
    """The layer's output scores to `out_path` (main prompt) and `out_by_prompt_path`
    (every prompt), and the log's summary of them."""
    lens = read_artifact(logit_lens_path).filter(pl.col("rank") < settings.top_k)
    lens = lens.sort("feature", "rank", maintain_order=True)
    features = lens["feature"].unique(maintain_order=True).to_list()
    token_ids = torch.tensor(lens["token_id"].to_list()).reshape(len(features), -1)
    if token_ids.shape[1] != settings.top_k:
        raise ConfigError(
            f"{logit_lens_path}: has {token_ids.shape[1]} tokens per feature, "
            f"output_score.top_k needs {settings.top_k}"
        )
    target = load_layer(model_path, sae_path, device)
    layer = target.layer
    scores, by_prompt = score_output(
        target.model, target.tokenizer, target.sae, layer, features, token_ids, settings
    )
    write_parquet(by_prompt, out_by_prompt_path, OUTPUT_SCORES_BY_PROMPT_SCHEMA)
    write_parquet(scores, out_path, OUTPUT_SCORES_SCHEMA)
    top = scores.sort("output_score", descending=True).head(5)
    log.info(
        "layer %d: %d features, median output score %.4g, top %s",
        layer,
        scores.height,
        scores["output_score"].median(),
        dict(zip(top["feature"], top["output_score"].round(4), strict=True)),
    )
    if scores["n_robustness_prompts"].max() > 0:
        pearson, spearman = robustness_correlation(scores)
        log.info(
            "layer %d: main prompt vs mean of %d robustness prompts: pearson %.3f, spearman %.3f",
            layer,
            scores["n_robustness_prompts"].max(),
            pearson,
            spearman,
        )

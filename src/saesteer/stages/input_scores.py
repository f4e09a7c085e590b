"""Stage `input_scores`: how often a feature's top activating tokens are among its
logit-lens tokens (the paper's input score), beside the layer's chance level."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from saesteer.artifacts import read_artifact
from saesteer.corpus import read_chunks
from saesteer.input_score import (
    INPUT_SCORES_SCHEMA,
    InputScoreSettings,
    frequent_tokens,
    score_input,
)
from saesteer.io import write_parquet
from saesteer.models import load_tokenizer

log = logging.getLogger(__name__)


def run(
    *,
    model: Annotated[Path, "model.json (its tokenizer)"],
    logit_lens: Annotated[Path, "the layer's logit_lens.parquet"],
    activations: Annotated[Path, "the layer's activations.parquet"],
    chunks: Annotated[Path | None, "chunks.parquet: its frequent tokens (chance level)"] = None,
    settings: InputScoreSettings,
    out: Annotated[Path, "input_scores.parquet"],
) -> None:
    tokenizer = load_tokenizer(model)
    frequent = None
    if chunks:
        frequent = frequent_tokens(
            read_chunks(chunks, "train"), settings.top_k, tokenizer.all_special_ids
        )
    lens = read_artifact(logit_lens)
    scores = score_input(read_artifact(activations), lens, tokenizer, settings, frequent)
    write_parquet(scores, out, INPUT_SCORES_SCHEMA)
    scored = scores.drop_nulls("input_score")
    log.info(
        "layer %d: %d of %d features scored (>= %d examples), median input score %s, "
        "chance level %s",
        scores["layer"][0],
        scored.height,
        scores.height,
        settings.min_examples,
        None if scored.is_empty() else round(scored["input_score"].median(), 4),
        None if scores.is_empty() else scores["input_score_chance"][0],
    )

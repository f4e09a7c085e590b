"""Stage `tokenize_corpus`: the corpus tokenized once into packed chunks, train and
held-out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

from saesteer.artifacts import read_artifact
from saesteer.corpus import CHUNKS_SCHEMA, tokenize_documents
from saesteer.io import write_parquet
from saesteer.models import load_tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenizeSettings:
    SECTIONS: ClassVar = ("corpus",)
    context_size: int
    heldout_fraction: float
    max_tokens: int | None


def run(
    *,
    model: Annotated[Path, "model.json"],
    documents: Annotated[Path, "documents.parquet"],
    settings: TokenizeSettings,
    out: Annotated[Path, "chunks.parquet"],
) -> None:
    chunks = tokenize_documents(
        read_artifact(documents),
        load_tokenizer(model),
        settings.context_size,
        settings.heldout_fraction,
        settings.max_tokens,
    )
    write_parquet(chunks, out, CHUNKS_SCHEMA)
    log.info(
        "tokenized: %d chunks of %d tokens (%s)",
        chunks.height,
        settings.context_size,
        dict(chunks["split"].value_counts().iter_rows()),
    )

"""Stage `corpus`: the text corpus (documents) from offline sources and the user's files."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

from saesteer.corpus import DOCUMENTS_SCHEMA, build_documents
from saesteer.io import write_parquet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorpusSettings:
    SECTIONS: ClassVar = ("corpus",)
    sources: tuple[str, ...]
    files: tuple[str, ...]
    seed: int


def run(*, settings: CorpusSettings, out: Annotated[Path, "documents.parquet"]) -> None:
    documents = build_documents(list(settings.sources), list(settings.files), seed=settings.seed)
    write_parquet(documents, out, DOCUMENTS_SCHEMA)
    log.info(
        "corpus: %d documents, %.1f MB, by source %s",
        documents.height,
        documents["text"].str.len_bytes().sum() / 1e6,
        dict(documents["source"].value_counts().iter_rows()),
    )

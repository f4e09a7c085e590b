"""Stage `released_concepts`: the paper's released Concept500 answers, instructions and
LLM ratings as one Parquet table, for Table 1 without generating or judging."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

from saesteer.concepts.released import (
    RELEASED_CONCEPTS_SCHEMA,
    import_released_concepts,
    summary,
)
from saesteer.io import write_parquet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReleasedConceptSettings:
    SECTIONS: ClassVar = ("concepts", "concepts.released")
    data_dir: str  # the release's data/ folder
    model_dir: str  # under generated_texts/
    n_select: int  # instructions that chose the factor


def run(*, settings: ReleasedConceptSettings, out: Annotated[Path, "OUT.parquet"]) -> None:
    frame = import_released_concepts(settings.data_dir, settings.model_dir, settings.n_select)
    write_parquet(frame, out, RELEASED_CONCEPTS_SCHEMA)
    log.info("%s: %d released concepts; %s", out, frame.height, summary(frame))

"""Stage `model`: resolve the run's model (embedded, hub or local) and record it in
model.json, which every later stage reads to load it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

from saesteer.io import write_json
from saesteer.models import model_info

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSettings:
    SECTIONS: ClassVar = ("model",)
    source: str
    dtype: str


def run(
    *,
    settings: ModelSettings,
    resources: Annotated[Path, "the resources folder (embedded models, downloads)"],
    out: Annotated[Path, "model.json"],
) -> None:
    info = model_info(settings.source, settings.dtype, resources)
    write_json(info, out)
    log.info("model %s -> %s", settings.source, info["path"])

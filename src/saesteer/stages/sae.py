"""Stage `sae`: resolve one layer's SAE (SAE-Lens release, local directory or trained) and
describe it in sae.json, which every later stage of the layer reads to load it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from saesteer.io import write_json
from saesteer.saes import sae_source

log = logging.getLogger(__name__)


def run(
    *,
    layer: int,
    settings: Annotated[dict, "the layer's `sae` section (layer_settings)"],
    out: Annotated[Path, "sae.json"],
) -> None:
    descriptor = sae_source(settings["source"]).describe(settings, layer)
    write_json(descriptor, out)
    log.info("layer %d: %s", layer, descriptor)

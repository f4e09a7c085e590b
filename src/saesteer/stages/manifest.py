"""Stage `manifest`: what the run used (saesteer's version, the model, each layer's SAE)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from saesteer import __version__
from saesteer.io import read_json, write_json


def run(
    *,
    run_name: Annotated[str, "the run's name"],
    model: Annotated[Path, "model.json"],
    sae: Annotated[list[Path], "every layer's sae.json"],
    out: Annotated[Path, "manifest.json"],
) -> None:
    saes = sorted((read_json(path) for path in sae), key=lambda d: d["layer"])
    manifest = {
        "run": run_name,
        "saesteer_version": __version__,
        "model": read_json(model),
        "layers": {str(d["layer"]): d for d in saes},
    }
    write_json(manifest, out)

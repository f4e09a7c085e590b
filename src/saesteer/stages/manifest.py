"""Stage `manifest`: what the run used (the model, each layer's SAE) and where its numbers
come from: saesteer's version and commit, the libraries, the machine, the corpus's SHA-256
and the packages its text and the embedded model were installed from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from saesteer import provenance
from saesteer.io import read_json, sha256_file, write_json


def run(
    *,
    run_name: Annotated[str, "the run's name"],
    model: Annotated[Path, "model.json"],
    sae: Annotated[list[Path], "every layer's sae.json"],
    documents: Annotated[
        Path | None, "the corpus's documents.parquet, if the run reads one"
    ] = None,
    chunks: Annotated[Path | None, "and its chunks.parquet"] = None,
    corpus_sources: Annotated[list[str], "corpus.sources, if the run reads a corpus"] = (),
    out: Annotated[Path, "manifest.json"],
) -> None:
    saes = sorted((read_json(path) for path in sae), key=lambda d: d["layer"])
    used = read_json(model)
    software = provenance.software()
    corpus = None
    if documents or chunks:
        corpus = {
            "documents_sha256": sha256_file(documents) if documents else None,
            "chunks_sha256": sha256_file(chunks) if chunks else None,
            "sources": provenance.corpus_sources(list(corpus_sources)),
        }
    manifest = {
        "run": run_name,
        "saesteer_version": software["saesteer"],
        "software": software,
        "machine": provenance.machine(),
        "model": provenance.portable_paths(used),
        "model_packages": provenance.model_packages(used["source"]),
        "corpus": corpus,
        "layers": {str(d["layer"]): provenance.portable_paths(d) for d in saes},
    }
    write_json(manifest, out)

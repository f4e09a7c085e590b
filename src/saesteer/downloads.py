"""Where the files a config names, but no rule makes, come from: a missing one is an error
that says where to get it."""

from __future__ import annotations

from pathlib import Path

PAPER_REPOSITORY = "technion-cs-nlp/saes-are-good-for-steering"

# File name -> its path in the paper's public repository.
PAPER_FILES = {
    "gemma_2b_features.json": "data/features/gemma_2b_features.json",
    "gemma_9b_concept500_features.json": "data/features/gemma_9b_concept500_features.json",
    "gemma2_9b_it_131_instructions_cache.json": (
        "data/axbench_instructions/gemma2_9b_it_131_instructions_cache.json"
    ),
}


def where_to_get(path: str | Path) -> str:
    """A hint naming the source of a user-downloaded file."""
    name = Path(path).name
    if name == "data":
        return (
            f"it is the data/ folder of the paper's repository {PAPER_REPOSITORY}: "
            "`make paper-data` clones it (see docs/method.md, 'Concept steering')"
        )
    if name in PAPER_FILES:
        return (
            f"it is {PAPER_FILES[name]} of the paper's repository {PAPER_REPOSITORY}: "
            f"`make paper-data` fetches it to {path} (see config/README.md, 'The paper's inputs')"
        )
    return (
        "no rule makes this file: download it (the paper's released data is in "
        f"{PAPER_REPOSITORY}, data/) or correct the path in the config"
    )


def missing_file(where: str, path: str | Path) -> str:
    return f"{where}: file not found: {path}; {where_to_get(path)}"

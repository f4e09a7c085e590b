"""Checks of a run's existing artifacts before any job runs.

Snakemake trusts a file that exists and is newer than its inputs. A truncated Parquet
file, or a model.json whose model directory is gone, would otherwise be read by the next
job, and Snakemake removes that job's old outputs before it starts: a good file would be
lost to a bad one. So the workflow refuses to start, naming the file and the rule to rerun.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import polars as pl

from saesteer.errors import ArtifactError


def rerun_hint(path: str | Path, rules: Iterable[str]) -> str:
    rules = sorted(set(rules))
    if not rules:
        return f"delete {path} or make it again"
    forcerun = " ".join(rules)
    return f"written by rule {', '.join(rules)}: rerun it with `snakemake --forcerun {forcerun}`"


def _unreadable(path: str | Path, reason: str, rules: Iterable[str]) -> str:
    return f"{path}: unreadable Parquet ({reason}); {rerun_hint(path, rules)}"


# The rule that writes each Parquet artifact, by file name.
_SAME_NAME = [
    "features",
    "logit_lens",
    "negative_logits",
    "output_scores",
    "activations",
    "input_scores",
    "generations",
    "gen_metrics",
    "best_factors",
    "sae_metrics",
    "concepts",
    "concept_generations",
    "concept_ratings",
    "concept_table",
]
_PRODUCERS = {
    **{stem: stem for stem in _SAME_NAME},
    "output_scores_by_prompt": "output_scores",
    "densities": "activations",
    "chunks": "tokenize_corpus",
    "documents": "corpus",
    "summary": "aggregate",
    "concept_scores": "concept_table",
}


def producing_rule(path: str | Path) -> list[str]:
    """The workflow rule that writes an artifact, from its name and place (none if the
    file is not one of the workflow's)."""
    path = Path(path)
    if path.name == "features.parquet" and path.parent.parent.name != "layers":
        return ["aggregate"]  # the run-level table; layers/<L>/features.parquet: `features`
    return [_PRODUCERS[path.stem]] if path.stem in _PRODUCERS else []


def read_artifact(
    path: str | Path,
    producers: Iterable[str] | None = None,
    columns: list[str] | None = None,
) -> pl.DataFrame:
    """`pl.read_parquet` (of `columns`, or all), with an error that names the file and the
    rule to rerun."""
    try:
        return pl.read_parquet(path, columns=columns)
    except Exception as e:  # polars raises several classes for one cause: a bad file
        rules = producing_rule(path) if producers is None else producers
        raise ArtifactError(_unreadable(path, str(e), rules)) from None


def unreadable_parquet(path: str | Path) -> str | None:
    """Why a Parquet file cannot be read, or None when it can: its footer, then every row
    group decoded one at a time (a file corrupted mid-way keeps a good footer; reading
    the data is what a job would do, and would fail only after Snakemake removed the
    job's good outputs). 0.4 s for the demo's 33 Parquet files (12 MB)."""
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as parquet:
            for group in range(parquet.num_row_groups):
                parquet.read_row_group(group)
    except Exception as e:  # noqa: BLE001 - any failure means the file is unusable
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    return None


def unreadable_json(path: str | Path) -> str | None:
    """Why a JSON artifact (model.json, sae.json) cannot be read, or None when it can."""
    from saesteer.io import read_json

    try:
        read_json(path)
    except Exception as e:  # noqa: BLE001 - any failure means the file is unusable
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    return None


def missing_model_dir(model_json: str | Path) -> str | None:
    """The model directory a model.json records, when it is gone."""
    try:
        path = json.loads(Path(model_json).read_text())["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # the model rule rewrites a bad file; jobs name it if it is read
    return None if Path(path).is_dir() else path


def check_inputs(inputs: Iterable[str], producers: Callable[[str], list[str]]) -> None:
    """Refuse to start when an existing file that a job is about to read is an unreadable
    Parquet or JSON file, or a model.json whose model directory is gone. `inputs` are the files
    the jobs to run read and no job to run writes (a forced rule's outputs are not here)."""
    problems = []
    for path in sorted(set(inputs)):
        if not Path(path).is_file():
            continue
        if path.endswith(".parquet") and (reason := unreadable_parquet(path)):
            problems.append(_unreadable(path, reason, producers(path)))
        if path.endswith(".json") and (reason := unreadable_json(path)):
            problems.append(
                f"{path}: unreadable JSON ({reason}); {rerun_hint(path, producers(path))}"
            )
        if Path(path).name == "model.json" and (gone := missing_model_dir(path)):
            problems.append(
                f"{path}: the model directory it records, {gone}, no longer exists (a cache "
                f"cleared or a directory moved?); {rerun_hint(path, producers(path))}"
            )
    if problems:
        raise ArtifactError("\n".join(problems))

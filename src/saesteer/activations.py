"""Top activating examples of SAE features, in one schema whatever their source:
Neuronpedia's API, Neuronpedia's bulk exports, or local mining (`saesteer.mining`)."""

from __future__ import annotations

import glob
import gzip
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from saesteer.config import with_layer
from saesteer.errors import ActivationsError
from saesteer.io import is_finite_number, loads_json

log = logging.getLogger(__name__)

ACTIVATIONS_SCHEMA = {
    "layer": pl.Int32,
    "feature": pl.Int64,
    "example": pl.Int32,
    "tokens": pl.List(pl.Utf8),
    # null when the source gives token strings only (Neuronpedia)
    "token_ids": pl.List(pl.Int64),
    "values": pl.List(pl.Float64),
    "max_value": pl.Float64,
    "max_token_index": pl.Int32,
}


@dataclass(frozen=True)
class Example:
    tokens: list[str]
    values: list[float]
    token_ids: list[int] | None = None

    @property
    def max_token_index(self) -> int:
        """The first position of the largest value, as `argmax` in the public code."""
        return max(range(len(self.values)), key=self.values.__getitem__)


def parse_example(record: Any, where: str) -> Example:
    """One Neuronpedia activation record: `{tokens: [str], values: [float], ...}`."""
    if not isinstance(record, dict):
        raise ActivationsError(f"{where}: expected an object, got {type(record).__name__}")
    tokens, values = record.get("tokens"), record.get("values")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ActivationsError(f"{where}: 'tokens' must be a list of strings")
    if not isinstance(values, list):
        raise ActivationsError(f"{where}: 'values' must be a list of numbers")
    bad = next((i for i, v in enumerate(values) if not is_finite_number(v)), None)
    if bad is not None:
        raise ActivationsError(
            f"{where}: 'values' must be a list of finite numbers; values[{bad}] is {values[bad]!r}"
        )
    if not tokens or len(tokens) != len(values):
        raise ActivationsError(
            f"{where}: {len(tokens)} tokens and {len(values)} values (need equal, non-zero)"
        )
    return Example(tokens, [float(v) for v in values])


def parse_feature_json(data: Any, where: str) -> list[Example]:
    """The examples of Neuronpedia's feature JSON (`GET /api/feature/...`), in its order."""
    if not isinstance(data, dict):
        raise ActivationsError(f"{where}: expected a feature object, got {type(data).__name__}")
    records = data.get("activations")
    if not isinstance(records, list):
        raise ActivationsError(f"{where}: no 'activations' list")
    return [parse_example(r, f"{where}: activations[{i}]") for i, r in enumerate(records)]


def strongest_first(examples: list[Example], n_examples: int) -> list[Example]:
    """The first `n_examples` by max value, descending; ties keep the source's order (the
    API already lists examples this way, so its order is kept)."""
    return sorted(examples, key=lambda e: -max(e.values))[:n_examples]


def activations_frame(layer: int, examples: dict[int, list[Example]]) -> pl.DataFrame:
    rows = [
        {
            "layer": layer,
            "feature": feature,
            "example": i,
            "tokens": e.tokens,
            "token_ids": e.token_ids,
            "values": e.values,
            "max_value": e.values[e.max_token_index],
            "max_token_index": e.max_token_index,
        }
        for feature, feature_examples in examples.items()
        for i, e in enumerate(feature_examples)
    ]
    return pl.DataFrame(rows, schema=ACTIVATIONS_SCHEMA)


def export_files(pattern: str, layer: int) -> list[Path]:
    """The bulk-export files of one layer: `pattern` is a glob, `{layer}` is filled in."""
    pattern = with_layer(pattern, layer, "activations.bulk.files")
    files = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    if not files:
        raise ActivationsError(f"activations.bulk.files: no file matches {pattern!r}")
    return files


def import_bulk_export(
    files: Iterable[Path], source_id: str, features: list[int], n_examples: int
) -> dict[int, list[Example]]:
    """Examples of `features` from Neuronpedia activation exports (gzipped JSONL, one
    activation per line with `index`, `layer` = the source id, `tokens`, `values`).

    Lines of other sources are skipped, so a folder holding several layers is fine."""
    wanted = set(features)
    found: dict[int, list[Example]] = {f: [] for f in features}
    for path in files:
        for where, record in _jsonl_records(path):
            line_source = record.get("layer", record.get("source"))
            if line_source is not None and line_source != source_id:
                continue
            index = _feature_index(record.get("index"), where)
            if index in wanted:
                found[index].append(parse_example(record, where))
    empty = [f for f, e in found.items() if not e]
    if empty:
        log.warning("source %s: no exported activations for features %s", source_id, empty[:20])
    return {f: strongest_first(e, n_examples) for f, e in found.items()}


def _jsonl_records(path: Path) -> Iterator[tuple[str, dict]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                where = f"{path}:{n}"
                record = loads_json(line, where)
                if not isinstance(record, dict):
                    raise ActivationsError(f"{where}: expected an object per line")
                yield where, record
    except (OSError, EOFError, UnicodeDecodeError) as e:  # a truncated or non-gzip file
        raise ActivationsError(f"{path}: cannot read ({e})") from e


def _feature_index(value: Any, where: str) -> int:
    # Exports write the index as a string of digits; int() would also take "-3", 2.7 or true.
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ActivationsError(
        f"{where}: 'index' {value!r} is not a feature index (a non-negative integer)"
    )

"""The paper's released JSON as inputs: generations per factor and best factors.

- generations: one file per factor, `{"<layer>_<index>": [text, ...]}`, each text the
  prefix followed by its continuation;
- best factors: `{"<layer>_<index>": factor}`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from saesteer.errors import ReleasedDataError
from saesteer.generations_table import generations_frame
from saesteer.io import is_finite_number, read_json_object


def _read_object(path: str | Path) -> dict:
    return read_json_object(path, str(path), '{"<layer>_<index>": ...}')


def factor_file(template: str, factor: float) -> str:
    """The file of one factor: `{factor}` is the factor as Python writes a float (0.2, 10.0)."""
    return template.format(factor=float(factor))


def read_released_generations(
    template: str,
    layer: int,
    features: list[int],
    factors: list[float],
    prefixes: list[str],
    tokenizer,
) -> pl.DataFrame:
    """The released texts of `features` at `factors`, split into prefix and continuation.

    Text j is expected to start with prefix j; otherwise the longest configured prefix it
    starts with is taken. `n_tokens` is the continuation's length in `tokenizer`'s tokens."""
    rows = []
    for factor in factors:
        path = factor_file(template, factor)
        data = _read_object(path)
        for feature in features:
            key = f"{layer}_{feature}"
            texts = data.get(key)
            where = f"{path}: feature {key}"
            if texts is None:
                raise ReleasedDataError(f"{where}: not in the file")
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise ReleasedDataError(f"{where}: expected a list of texts")
            for j, text in enumerate(texts):
                prefix_id = _prefix_of(text, j, prefixes, f"{where}, text {j}")
                rows.append((feature, float(factor), prefix_id, text[len(prefixes[prefix_id]) :]))
    frame = pl.DataFrame(
        rows,
        schema={
            "feature": pl.Int64,
            "factor": pl.Float64,
            "prefix_id": pl.Int32,
            "continuation": pl.Utf8,
        },
        orient="row",
    )
    lengths = tokenizer(frame["continuation"].to_list(), add_special_tokens=False)["input_ids"]
    frame = frame.with_columns(
        n_tokens=pl.Series([len(ids) for ids in lengths], dtype=pl.Int32),
        seed=pl.lit(None, dtype=pl.Int64),
    )
    source = pl.col("factor").map_elements(lambda c: factor_file(template, c), return_dtype=pl.Utf8)
    return generations_frame(layer, frame, prefixes, source)


def _prefix_of(text: str, j: int, prefixes: list[str], where: str) -> int:
    if j < len(prefixes) and text.startswith(prefixes[j]):
        return j
    matches = [i for i, prefix in enumerate(prefixes) if text.startswith(prefix)]
    if not matches:
        raise ReleasedDataError(f"{where}: starts with none of the prefixes ({text[:40]!r})")
    return max(matches, key=lambda i: len(prefixes[i]))


def read_released_best_factors(path: str | Path, layer: int) -> pl.DataFrame:
    """(feature, released_factor) of `layer` from the released best-factor JSON."""
    data = _read_object(path)
    rows = []
    for key, factor in data.items():
        found_layer, _, index = str(key).partition("_")
        if not (found_layer.isdigit() and index.isdigit()):
            raise ReleasedDataError(f"{path}: key {key!r} is not <layer>_<index>")
        if isinstance(factor, bool) or not isinstance(factor, int | float):
            raise ReleasedDataError(f"{path}: feature {key}: factor {factor!r} is not a number")
        # A steering factor is a finite scale of a feature's direction, never negative.
        if not is_finite_number(factor) or factor < 0:
            raise ReleasedDataError(
                f"{path}: feature {key}: factor {factor!r} is not finite and >= 0"
            )
        if int(found_layer) == layer:
            rows.append((int(index), float(factor)))
    return pl.DataFrame(
        rows, schema={"feature": pl.Int64, "released_factor": pl.Float64}, orient="row"
    )

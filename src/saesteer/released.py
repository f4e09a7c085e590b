"""The one reader of the paper's release (its repository's `data/` folder, DATA_DIR).

Every file the pipeline takes from the release is read here, by one set of rules:

- keyed files `{"<layer>_<index>": value}`: `read_keyed` gives {(layer, feature): value};
  a key that is not two ASCII digit runs joined by `_`, or that names a feature twice
  (`3_7`, `03_7`), is refused;
- factors (`check_factor`, the one rule below), in the best-factor files
  `steering_factors/<prefix>_best_steering_factors.json` (`{"<layer>_<index>": factor}`),
  the judge caches' `best_steering_factor`, and the generation files' names;
- generation files, one per factor, `{"<layer>_<index>": [text, ...]}`, each text the
  prefix (or instruction) followed by its continuation: as the release names them,
  `generated_texts/<model_dir>/<prefix>_generations_cache_<factor>.json` with the factor
  written `0_4`, `10_0` (`factor_name`, `generation_files`), or through a configured
  template whose `{factor}` is the factor as Python writes a float (`factor_file`,
  `generation.released.files`).

The factor rule: a factor is a finite number (not a bool) >= 0. 0 is the unsteered
baseline, negative factors do not occur. The release's own evidence (checked against its
`data/` at commit 8f11a99):

- `src/plot.py` reads one generation cache per factor of `tested_amp_factors = [0.0, 0.2,
  ..., 20.0]`, named `str(factor).replace(".", "_")`: a factor of 0 is a generation file of
  its own (`..._cache_0_0.json`), though the release ships none;
- the 39 generation files in its git tree (generated_texts/gemma_2b, gemma_9b, gemma_9b_it)
  are named with factors 0_2 to 100_0 (0.2, 0.4, 0.8, 1.2, 1.4, 1.6, 2.0, 3.0, 4.0, 6.0,
  8.0, 10.0, 20.0, 40.0, 60.0, 100.0), none negative; the name pattern `<digits>_<digits>`
  cannot write a negative factor;
- the best-factor files hold floats from 0.2 (gemma2_2b, 2,600 features; gemma2_9b, 4,200)
  or 0.4 (gemma2_9b_it_131, 1,000 concepts) to 20.0 or 100.0: none is 0 (the baseline is
  never a best factor there) or negative; the judge caches' `best_steering_factor`
  (instruct and fluency, 1,000 each) repeat them.

So >= 0 accepts every factor the release writes and the baseline its code steers with; a
best factor of 0 is read (it is a factor the release could name) rather than refused.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl

from saesteer.errors import ReleasedDataError
from saesteer.generations_table import generations_frame
from saesteer.io import is_finite_number, loads_json

Feature = tuple[int, int]  # (layer, index): the key `<layer>_<index>`

KEYED = '{"<layer>_<index>": ...}'
_KEY = re.compile(r"(\d+)_(\d+)", re.ASCII)
_GENERATION_FILE = re.compile(r"(?P<prefix>.+)_generations_cache_(?P<factor>\d+_\d+)\.json")


def key_name(feature: Feature) -> str:
    """The release's key of a feature: `<layer>_<index>`."""
    return f"{feature[0]}_{feature[1]}"


def read_keyed(path: str | Path) -> dict[Feature, Any]:
    """A file `{"<layer>_<index>": value}` as {(layer, index): value}.

    ReleasedDataError for a missing file, another JSON type than an object, a key that is not
    `<layer>_<index>` or one repeating a feature; DataFileError for invalid JSON."""
    path = Path(path)
    if not path.is_file():
        raise ReleasedDataError(f"{path}: file not found")
    data = loads_json(path.read_bytes(), str(path))
    if not isinstance(data, dict):
        raise ReleasedDataError(f"{path}: expected {KEYED}, got {type(data).__name__}")
    out: dict[Feature, Any] = {}
    for key, value in data.items():
        match = _KEY.fullmatch(key)
        if match is None:
            raise ReleasedDataError(f"{path}: key {key!r} is not <layer>_<index>")
        feature = (int(match[1]), int(match[2]))
        if feature in out:
            raise ReleasedDataError(f"{path}: key {key!r} repeats feature {key_name(feature)}")
        out[feature] = value
    return out


def check_factor(value: Any, where: str, name: str = "factor") -> float:
    """`value` as a float if it is a factor by the release's rule (finite, >= 0; see the
    module's docstring), else ReleasedDataError naming `where` and `name`."""
    if not is_finite_number(value) or value < 0:
        raise ReleasedDataError(f"{where}: {name} {value!r} is not a finite number >= 0")
    return float(value)


def factor_name(factor: float) -> str:
    """The factor as the release's file names write it: 0.4 -> `0_4`, 10 -> `10_0`."""
    return repr(float(factor)).replace(".", "_")


def factor_file(template: str, factor: float) -> str:
    """The file of one factor: `{factor}` is the factor as Python writes a float (0.2, 10.0)."""
    return template.format(factor=float(factor))


def generation_file(model_path: Path, prefix: str, factor: float) -> Path:
    """Where the release keeps the generation file of `factor`, present or not."""
    return model_path / f"{prefix}_generations_cache_{factor_name(factor)}.json"


def best_factors_file(data_dir: str | Path, prefix: str) -> Path:
    return Path(data_dir) / "steering_factors" / f"{prefix}_best_steering_factors.json"


def generation_files(model_path: Path) -> tuple[str, dict[float, Path]]:
    """The prefix of a model dir's generation files and {factor: file}."""
    if not model_path.is_dir():
        raise ReleasedDataError(f"{model_path}: model dir not found")
    found: dict[str, dict[float, Path]] = {}
    for path in sorted(model_path.iterdir()):
        match = _GENERATION_FILE.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        factor = check_factor(float(match["factor"].replace("_", ".")), str(path))
        files = found.setdefault(match["prefix"], {})
        if factor in files:
            raise ReleasedDataError(f"{path}: factor {factor} already in {files[factor].name}")
        files[factor] = path
    if not found:
        raise ReleasedDataError(
            f"{model_path}: no generation files (<prefix>_generations_cache_<factor>.json)"
        )
    if len(found) > 1:
        raise ReleasedDataError(
            f"{model_path}: generation files of several prefixes {sorted(found)}; "
            "keep one prefix per model dir"
        )
    [(prefix, files)] = found.items()
    return prefix, files


def read_best_factors(path: str | Path) -> dict[Feature, float]:
    """A best-factor file `{"<layer>_<index>": factor}` as {(layer, index): factor}."""
    return {
        feature: check_factor(factor, f"{path}: feature {key_name(feature)}")
        for feature, factor in read_keyed(path).items()
    }


def released_layers(data_dir: str | Path, model_dir: str = "gemma_9b_it") -> set[int]:
    """The layers of a model dir's best-factor file (a quick check before a run)."""
    prefix, _ = generation_files(Path(data_dir) / "generated_texts" / model_dir)
    return {layer for layer, _ in read_best_factors(best_factors_file(data_dir, prefix))}


def check_texts(path: str | Path, feature: Feature, texts: Any, n: int | None = None) -> list[str]:
    """`texts` if it is a list of strings (of `n`, when given), else ReleasedDataError."""
    if (
        not isinstance(texts, list)
        or (n is not None and len(texts) != n)
        or not all(isinstance(t, str) for t in texts)
    ):
        count = "" if n is None else f" {n}"
        where = f"{path}: feature {key_name(feature)}"
        raise ReleasedDataError(f"{where}: expected a list of{count} texts")
    return texts


def read_texts(path: str | Path, n: int | None = None) -> dict[Feature, list[str]]:
    """A file of texts per feature (generations, instructions): {(layer, index): texts}, each
    a list of strings (of `n`, when given)."""
    return {
        feature: check_texts(path, feature, texts, n) for feature, texts in read_keyed(path).items()
    }


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
    starts with is taken. `n_tokens` is the continuation's length in `tokenizer`'s tokens.
    `factors` are the config's grid, which its schema holds to the same rule (>= 0)."""
    rows = []
    for factor in factors:
        path = factor_file(template, factor)
        data = read_texts(path)
        for feature in features:
            texts = data.get((layer, feature))
            where = f"{path}: feature {key_name((layer, feature))}"
            if texts is None:
                raise ReleasedDataError(f"{where}: not in the file")
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
    """(feature, released_factor) of `layer` from a best-factor file."""
    rows = [
        (index, factor)
        for (found_layer, index), factor in read_best_factors(path).items()
        if found_layer == layer
    ]
    return pl.DataFrame(
        rows, schema={"feature": pl.Int64, "released_factor": pl.Float64}, orient="row"
    )

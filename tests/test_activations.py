"""The activations schema and Neuronpedia's bulk-export import."""

import gzip
import json
import subprocess
import sys

import polars as pl
import pytest

from saesteer.activations import (
    ACTIVATIONS_SCHEMA,
    Example,
    activations_frame,
    export_files,
    import_bulk_export,
    parse_example,
)
from saesteer.errors import ActivationsError, DataFileError
from saesteer.features import FEATURES_SCHEMA, features_frame
from saesteer.io import write_parquet


def record(source: str, index, peak: float, n: int = 4) -> dict:
    """An exported activation line; its max value `peak` sits at position 1."""
    values = [0.0, peak] + [peak / 2] * (n - 2)
    return {
        "modelId": "m",
        "layer": source,
        "index": str(index),
        "tokens": [f"t{index}_{i}" for i in range(n)],
        "values": values,
        "maxValue": peak,
        "maxValueTokenIndex": 1,
    }


def write_batch(path, lines) -> None:
    with gzip.open(path, "wt") as f:
        f.writelines(line if isinstance(line, str) else json.dumps(line) + "\n" for line in lines)


@pytest.fixture
def export(tmp_path):
    """Two batches holding two sources; examples out of order across the batches."""
    folder = tmp_path / "export" / "activations"
    folder.mkdir(parents=True)
    write_batch(
        folder / "batch-0.jsonl.gz",
        [record("3-res", 1, 2.0), record("4-res", 1, 99.0), record("3-res", 2, 1.0)],
    )
    write_batch(
        folder / "batch-1.jsonl.gz",
        ["\n", record("3-res", 1, 5.0), record("3-res", 1, 3.0), record("3-res", 7, 4.0)],
    )
    return tmp_path / "export" / "activations" / "*.jsonl.gz"


def test_bulk_import_keeps_the_source_and_features_strongest_first(export):
    files = export_files(str(export), 3)
    assert [f.name for f in files] == ["batch-0.jsonl.gz", "batch-1.jsonl.gz"]
    examples = import_bulk_export(files, "3-res", [1, 2, 5], n_examples=2)
    assert [max(e.values) for e in examples[1]] == [5.0, 3.0]  # 99.0 is layer 4's
    assert [max(e.values) for e in examples[2]] == [1.0]
    assert examples[5] == []  # listed but not exported; feature 7 is not listed
    assert examples[1][0].tokens == ["t1_0", "t1_1", "t1_2", "t1_3"]
    assert examples[1][0].token_ids is None and examples[1][0].max_token_index == 1


def test_bulk_import_through_the_cli_writes_the_schema(export, tmp_path):
    write_parquet(features_frame(3, [1, 2]), tmp_path / "features.parquet", FEATURES_SCHEMA)
    settings = {
        "source": "bulk",
        "n_examples": 100,
        "bulk": {"files": str(export), "source": "{layer}-res"},
    }
    result = subprocess.run(
        [
            *(sys.executable, "-m", "saesteer.cli", "activations", "--layer", "3"),
            *("--features", str(tmp_path / "features.parquet"), "--settings", json.dumps(settings)),
            *("--out", str(tmp_path / "activations.parquet")),
            *("--out-densities", str(tmp_path / "densities.parquet")),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    frame = pl.read_parquet(tmp_path / "activations.parquet")
    assert dict(frame.schema) == ACTIVATIONS_SCHEMA
    assert frame.select("feature", "example", "max_value", "max_token_index").rows() == [
        (1, 0, 5.0, 1),
        (1, 1, 3.0, 1),
        (1, 2, 2.0, 1),
        (2, 0, 1.0, 1),
    ]
    assert frame["token_ids"].is_null().all()
    # Exports hold examples, not how often a feature fires: density unknown, and said so.
    densities = pl.read_parquet(tmp_path / "densities.parquet")
    assert densities["density"].is_null().all() and set(densities["density_source"]) == {"none"}


def test_bulk_import_errors_name_the_file_and_line(tmp_path):
    write_batch(tmp_path / "bad.jsonl.gz", [record("3-res", 1, 1.0), "{broken\n"])
    with pytest.raises(DataFileError, match=r"bad.jsonl.gz:2: not valid JSON"):
        import_bulk_export([tmp_path / "bad.jsonl.gz"], "3-res", [1], 10)
    write_batch(tmp_path / "index.jsonl.gz", [{**record("3-res", 1, 1.0), "index": "x"}])
    with pytest.raises(ActivationsError, match=r"index.jsonl.gz:1: 'index' 'x' is not"):
        import_bulk_export([tmp_path / "index.jsonl.gz"], "3-res", [1], 10)
    write_batch(tmp_path / "short.jsonl.gz", [{**record("3-res", 1, 1.0), "values": [1.0]}])
    with pytest.raises(ActivationsError, match=r"short.jsonl.gz:1: 4 tokens and 1 values"):
        import_bulk_export([tmp_path / "short.jsonl.gz"], "3-res", [1], 10)
    full = gzip.compress(json.dumps(record("3-res", 1, 1.0)).encode() * 50)
    (tmp_path / "cut.jsonl.gz").write_bytes(full[: len(full) // 2])
    with pytest.raises(ActivationsError, match=r"cut.jsonl.gz: cannot read"):
        import_bulk_export([tmp_path / "cut.jsonl.gz"], "3-res", [1], 10)
    with pytest.raises(ActivationsError, match=r"activations.bulk.files: no file matches"):
        export_files(str(tmp_path / "{layer}" / "*.gz"), 3)


def test_parse_example_rejects_bad_records():
    with pytest.raises(ActivationsError, match="x: 'tokens' must be a list of strings"):
        parse_example({"tokens": [1], "values": [1.0]}, "x")
    with pytest.raises(ActivationsError, match="x: 0 tokens and 0 values"):
        parse_example({"tokens": [], "values": []}, "x")
    with pytest.raises(ActivationsError, match="x: expected an object, got list"):
        parse_example([], "x")


def test_activations_frame_takes_the_first_max():
    examples = {4: [Example(["a", "b", "c"], [1.0, 2.0, 2.0], [7, 8, 9])], 5: []}
    frame = activations_frame(2, examples)
    assert frame.rows() == [(2, 4, 0, ["a", "b", "c"], [7, 8, 9], [1.0, 2.0, 2.0], 2.0, 1)]

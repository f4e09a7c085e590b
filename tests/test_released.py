"""The paper's released generations and best factors as inputs."""

import json
import os
import subprocess
import sys

import polars as pl
import pytest

from saesteer.errors import DataFileError, ReleasedDataError, SaesteerError
from saesteer.generations_table import GENERATIONS_SCHEMA
from saesteer.released import (
    factor_file,
    factor_name,
    read_released_best_factors,
    read_released_generations,
)
from tests.helpers import RELEASE_BEST, import_, release, write

PREFIXES = ["w1 w2", "w1", "w3"]


def write_factors(tmp_path, data_by_factor) -> str:
    for factor, data in data_by_factor.items():
        (tmp_path / f"gen_{factor}.json").write_text(json.dumps(data))
    return str(tmp_path / "gen_{factor}.json")


def test_released_generations_are_split_into_prefix_and_continuation(tmp_path, tiny_model):
    _, tokenizer = tiny_model
    template = write_factors(
        tmp_path,
        {
            0.0: {"2_5": ["w1 w2 w9 w9", "w1 w7", "w3"], "2_6": ["w1 w2", "w1", "w3 w4"]},
            # text 1 does not start with prefix 1, text 2 not with prefix 2: the
            # longest prefix each starts with is taken
            2.0: {"2_5": ["w1 w2 w5.", "w3 w6", "w1 w2 w8"], "3_5": ["other layer"]},
        },
    )
    frame = read_released_generations(template, 2, [5], [0.0, 2.0], PREFIXES, tokenizer)
    assert frame.columns == list(GENERATIONS_SCHEMA)
    rows = frame.select("factor", "prefix_id", "prefix", "continuation", "n_tokens").rows()
    assert rows == [
        (0.0, 0, "w1 w2", " w9 w9", 2),
        (0.0, 1, "w1", " w7", 1),
        (0.0, 2, "w3", "", 0),
        (2.0, 0, "w1 w2", " w5.", 1),  # word-level: "w5." is one (unknown) word
        (2.0, 0, "w1 w2", " w8", 1),
        (2.0, 2, "w3", " w6", 1),
    ]
    assert (frame["text"] == frame["prefix"] + frame["continuation"]).all()
    assert frame["seed"].is_null().all()
    assert set(frame["source"]) == {factor_file(template, 0.0), factor_file(template, 2.0)}


def test_factor_files_are_named_as_python_writes_floats():
    assert factor_file("g/{factor}.json", 0.2) == "g/0.2.json"
    assert factor_file("g/{factor}.json", 10) == "g/10.0.json"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"2_6": ["w1"]}, "feature 2_5: not in the file"),
        ({"2_5": "w1 w2"}, "feature 2_5: expected a list of texts"),
        ({"2_5": ["w1", 3]}, "feature 2_5: expected a list of texts"),
        ({"2_5": ["w1", "w9 w9"]}, "feature 2_5, text 1: starts with none of the prefixes"),
        (["w1"], "expected"),
    ],
)
def test_bad_released_generations_name_the_file_and_feature(tmp_path, tiny_model, data, message):
    template = write_factors(tmp_path, {4.0: data})
    with pytest.raises(SaesteerError, match=message) as error:  # a DataFileError for bad JSON
        read_released_generations(template, 2, [5], [4.0], PREFIXES, tiny_model[1])
    assert "gen_4.0.json" in str(error.value)


def test_missing_or_malformed_files(tmp_path, tiny_model):
    with pytest.raises(ReleasedDataError, match=r"gen_0.2.json: file not found"):
        read_released_generations(
            str(tmp_path / "gen_{factor}.json"), 2, [5], [0.2], PREFIXES, tiny_model[1]
        )
    (tmp_path / "best.json").write_text("{not json")
    with pytest.raises(DataFileError, match="best.json: not valid JSON"):
        read_released_best_factors(tmp_path / "best.json", 2)


def test_released_best_factors_of_one_layer(tmp_path):
    path = tmp_path / "best.json"
    path.write_text(json.dumps({"2_5": 0.4, "2_17": 10, "3_5": 2.0}))
    frame = read_released_best_factors(path, 2)
    assert frame.sort("feature").rows() == [(5, 0.4), (17, 10.0)]
    assert frame.schema == pl.Schema({"feature": pl.Int64, "released_factor": pl.Float64})
    for bad, message in [
        ({"x_5": 1.0}, "key 'x_5' is not <layer>_<index>"),
        ({"2_5": "1"}, "feature 2_5: factor '1' is not a finite number >= 0"),
        ({"2_5": 1.0, "02_5": 2.0}, "key '02_5' repeats feature 2_5"),
    ]:
        path.write_text(json.dumps(bad))
        with pytest.raises(ReleasedDataError, match=message):
            read_released_best_factors(path, 2)


def test_the_factor_rule_is_the_same_for_both_readers(tmp_path):
    """A factor of 0 (the unsteered baseline) is read by the generations' best-factor import
    and by the concept import alike; a negative factor is refused by both, with one message."""
    files = release()
    files[RELEASE_BEST]["3_7"] = 0.0
    data = write(tmp_path / "zero", files)
    paper = read_released_best_factors(data / RELEASE_BEST, 3)
    assert dict(paper.iter_rows())[7] == 0.0
    concepts = import_(data)
    assert concepts.filter(layer=3, feature=7)["best_factor"].item() == 0.0
    assert concepts.filter(layer=3, feature=7)["generation_file"].item().endswith("_0_0.json")

    files[RELEASE_BEST]["3_7"] = -0.2
    data = write(tmp_path / "negative", files)
    message = f"{data / RELEASE_BEST}: feature 3_7: factor -0.2 is not a finite number >= 0"
    with pytest.raises(ReleasedDataError) as generations_error:
        read_released_best_factors(data / RELEASE_BEST, 3)
    with pytest.raises(ReleasedDataError) as concepts_error:
        import_(data)
    assert str(generations_error.value) == str(concepts_error.value) == message


def test_factor_names_as_the_release_writes_them():
    assert [factor_name(f) for f in (0, 0.4, 10, 100.0)] == ["0_0", "0_4", "10_0", "100_0"]


@pytest.mark.parametrize("module", ["saesteer.released", "saesteer.concepts.released"])
def test_the_readers_do_not_import_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch imported'"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr

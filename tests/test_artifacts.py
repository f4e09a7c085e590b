"""Checks of existing artifacts: a bad file names itself and the rule that writes it."""

import json

import polars as pl
import pytest

from saesteer.artifacts import check_inputs, producing_rule, read_artifact
from saesteer.errors import ArtifactError


@pytest.mark.parametrize(
    ("path", "rules"),
    [
        ("results/r/layers/3/output_scores_by_prompt.parquet", ["output_scores"]),
        ("results/r/layers/3/features.parquet", ["features"]),
        ("results/r/features.parquet", ["aggregate"]),
        ("results/r/corpus/chunks.parquet", ["tokenize_corpus"]),
        ("results/r/concepts/concept_scores.parquet", ["concept_table"]),
        ("elsewhere/mine.parquet", []),
    ],
)
def test_the_rule_that_writes_each_artifact(path, rules):
    assert producing_rule(path) == rules


def test_an_unreadable_parquet_names_the_file_and_the_rerun(tmp_path):
    bad = tmp_path / "layers/3/logit_lens.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"PAR1 cut short")
    with pytest.raises(ArtifactError, match=r"logit_lens.parquet: unreadable Parquet.*--forcerun"):
        read_artifact(bad)
    good = tmp_path / "layers/3/features.parquet"
    pl.DataFrame({"layer": [3], "feature": [1]}).write_parquet(good)
    assert read_artifact(good).height == 1


def test_check_inputs_lists_every_bad_file(tmp_path):
    bad = tmp_path / "gen_metrics.parquet"
    bad.write_bytes(b"not parquet")
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"path": str(tmp_path / "gone")}))
    fine = tmp_path / "fine.parquet"
    pl.DataFrame({"a": [1]}).write_parquet(fine)
    with pytest.raises(ArtifactError) as error:
        check_inputs([str(bad), str(model), str(fine), str(tmp_path / "absent")], lambda p: ["r"])
    lines = str(error.value).splitlines()
    assert len(lines) == 2
    assert "gen_metrics.parquet: unreadable Parquet" in lines[0]
    assert f"the model directory it records, {tmp_path / 'gone'}, no longer exists" in lines[1]
    check_inputs([str(fine)], lambda p: ["r"])

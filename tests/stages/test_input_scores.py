"""Stage `input_scores` by hand: `saesteer input-scores`, called as the rule called it,
scores the inputs exactly as the rule did."""

import pytest

from tests.helpers import assert_same_files, rerun_by_hand


@pytest.mark.workflow
def test_by_hand_equals_the_rule(tiny_run, tmp_path):
    workdir, _ = tiny_run
    outputs = ["results/tiny/layers/1/input_scores.parquet"]
    assert_same_files(rerun_by_hand(workdir, outputs, tmp_path))

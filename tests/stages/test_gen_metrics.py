"""Stage `gen_metrics` by hand: `saesteer gen-metrics`, called as the rule called it,
scores the generations exactly as the rule did."""

import pytest

from tests.helpers import assert_same_files, rerun_by_hand


@pytest.mark.workflow
def test_by_hand_equals_the_rule(tiny_run, tmp_path):
    workdir, _ = tiny_run
    outputs = ["results/tiny/layers/2/gen_metrics.parquet"]
    assert_same_files(rerun_by_hand(workdir, outputs, tmp_path))

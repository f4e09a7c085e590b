"""Stage `sae_metrics` by hand: `saesteer sae-metrics`, called as the rule called it,
measures the SAE exactly as the rule did."""

import pytest

from tests.helpers import assert_same_files, rerun_by_hand


@pytest.mark.workflow
def test_by_hand_equals_the_rule(trained_run, tmp_path):
    workdir, _ = trained_run
    outputs = ["results/tiny/layers/1/sae_metrics.parquet"]
    assert_same_files(rerun_by_hand(workdir, outputs, tmp_path))

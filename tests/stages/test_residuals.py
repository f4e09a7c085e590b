"""Stage `residuals` by hand: `saesteer residuals`, called as the rule called it,
caches the residuals exactly as the rule did."""

import pytest

from tests.helpers import assert_same_files, rerun_by_hand


@pytest.mark.workflow
def test_by_hand_equals_the_rule(tiny_run, tmp_path):
    workdir, _ = tiny_run
    outputs = [
        "results/tiny/residuals/layer_1.safetensors",
        "results/tiny/residuals/layer_2.safetensors",
    ]
    assert_same_files(rerun_by_hand(workdir, outputs, tmp_path))

"""Stage `plots` by hand: `saesteer plots`, called as the rule called it,
draws the plots exactly as the rule did."""

import pytest

from tests.helpers import assert_same_files, rerun_by_hand


@pytest.mark.workflow
def test_by_hand_equals_the_rule(tiny_run, tmp_path):
    workdir, _ = tiny_run
    outputs = [
        "results/tiny/plots/roles_across_layers.png",
        "results/tiny/plots/output_threshold_curve.png",
        "results/tiny/plots/input_vs_output.png",
        "results/tiny/plots/best_factor_histogram.png",
        "results/tiny/plots/gen_success_filtering.png",
    ]
    assert_same_files(rerun_by_hand(workdir, outputs, tmp_path))

"""Stage `train_sae` by hand: `saesteer train-sae`, called as the rule called it, trains the
same SAE (its config, and weights to float tolerance)."""

import pytest

from tests.helpers import assert_same_files, rerun_by_hand


@pytest.mark.workflow
def test_by_hand_equals_the_rule(trained_run, tmp_path):
    workdir, _ = trained_run
    (sae,) = (workdir / "results/tiny/layers/3").glob("sae-*")
    outputs = [str(sae.relative_to(workdir))]
    assert_same_files(rerun_by_hand(workdir, outputs, tmp_path))

"""Stage `concept_generations` by hand: `saesteer concept-generations`, called as the rule
called it, samples the concept answers exactly as the rule did."""

import pytest

from tests.helpers import assert_same_files, rerun_by_hand


@pytest.mark.workflow
def test_by_hand_equals_the_rule(concept_run, tmp_path):
    workdir, _ = concept_run
    outputs = ["results/tiny/layers/2/concept_generations.parquet"]
    assert_same_files(rerun_by_hand(workdir, outputs, tmp_path))

"""Stage `concept_table` by hand: `saesteer concept-table`, called as the rule called it,
builds Table 1 exactly as the rule did."""

import pytest

from tests.helpers import assert_same_files, rerun_by_hand


@pytest.mark.workflow
def test_by_hand_equals_the_rule(concept_run, tmp_path):
    workdir, _ = concept_run
    outputs = [
        "results/tiny/concepts/concept_scores.parquet",
        "results/tiny/concepts/concept_table.parquet",
        "results/tiny/concepts/concept_table.html",
    ]
    assert_same_files(rerun_by_hand(workdir, outputs, tmp_path))

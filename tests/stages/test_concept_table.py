"""Stage `concept_table` by hand: `saesteer concept-table`, called as the rule called it,
builds Table 1 exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "concept_run",
    "results/tiny/concepts/concept_scores.parquet",
    "results/tiny/concepts/concept_table.parquet",
    "results/tiny/concepts/concept_table.html",
)

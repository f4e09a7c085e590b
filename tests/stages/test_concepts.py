"""Stage `concepts` by hand: `saesteer concepts`, called as the rule called it,
describes the concepts exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "concept_run", "results/tiny/layers/2/concepts.parquet"
)

"""Stage `concept_generations` by hand: `saesteer concept-generations`, called as the rule
called it, samples the concept answers exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "concept_run", "results/tiny/layers/2/concept_generations.parquet"
)

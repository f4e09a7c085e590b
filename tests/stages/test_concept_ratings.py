"""Stage `concept_ratings` by hand: `saesteer concept-ratings`, called as the rule called it,
rates the answers (from the cache) exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "concept_run", "results/tiny/layers/2/concept_ratings.parquet"
)

"""Stage `input_scores` by hand: `saesteer input-scores`, called as the rule called it,
scores the inputs exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/layers/1/input_scores.parquet"
)

"""Stage `best_factors` by hand: `saesteer best-factors`, called as the rule called it,
chooses the best factors exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/layers/2/best_factors.parquet"
)

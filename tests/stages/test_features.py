"""Stage `features` by hand: `saesteer features`, called as the rule called it,
selects a layer's features exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/layers/2/features.parquet"
)

"""Stage `aggregate` by hand: `saesteer aggregate`, called as the rule called it,
joins the layers exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/features.parquet", "results/tiny/summary.parquet"
)

"""Stage `gen_metrics` by hand: `saesteer gen-metrics`, called as the rule called it,
scores the generations exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/layers/2/gen_metrics.parquet"
)

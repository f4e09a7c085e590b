"""Stage `negative_logits` by hand: `saesteer negative-logits`, called as the rule called
it, computes the lowest logits exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/layers/1/negative_logits.parquet"
)

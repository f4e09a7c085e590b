"""Stage `logit_lens` by hand: `saesteer logit-lens`, called as the rule called it,
computes the logit lens exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/layers/1/logit_lens.parquet"
)

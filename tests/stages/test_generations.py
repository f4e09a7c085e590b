"""Stage `generations` by hand: `saesteer generations`, called as the rule called it,
samples the steered grid exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/layers/2/generations.parquet"
)

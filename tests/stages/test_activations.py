"""Stage `activations` by hand: `saesteer activations`, called as the rule called it,
mines the top activations exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/layers/1/activations.parquet"
)

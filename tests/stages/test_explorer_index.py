"""Stage `explorer_index` by hand: `saesteer explorer-index`, called as the rule called
it, writes the explorer's table exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/explorer/index.html"
)

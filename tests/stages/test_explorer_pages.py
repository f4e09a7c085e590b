"""Stage `explorer_pages` by hand: `saesteer explorer-pages`, called as the rule called
it, writes the layer's pages exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule("tiny_run", "results/tiny/explorer/layers/2")

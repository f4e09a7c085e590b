"""Stage `findings` by hand: `saesteer findings`, called as the rule called it,
writes the findings exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/findings.json", "results/tiny/findings.html"
)

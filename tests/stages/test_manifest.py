"""Stage `manifest` by hand: `saesteer manifest`, called as the rule called it,
writes the manifest exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule("tiny_run", "results/tiny/manifest.json")

"""Stage `model` by hand: `saesteer model`, called as the rule called it,
resolves the model into model.json exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule("tiny_run", "results/tiny/model.json")

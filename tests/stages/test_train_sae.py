"""Stage `train_sae` by hand: `saesteer train-sae`, called as the rule called it, trains the
same SAE (its config, and weights to float tolerance)."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule("trained_run", "results/tiny/layers/3/sae-*")

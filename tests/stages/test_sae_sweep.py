"""Stage `sae_sweep` by hand: `saesteer sae-sweep`, called as the rule called it, scores
the sweep variant's SAE exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "trained_run", "results/tiny/sweep/k4/layers/3"
)

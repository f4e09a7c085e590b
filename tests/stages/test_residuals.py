"""Stage `residuals` by hand: `saesteer residuals`, called as the rule called it,
caches the residuals exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run",
    "results/tiny/residuals/layer_1.safetensors",
    "results/tiny/residuals/layer_2.safetensors",
)

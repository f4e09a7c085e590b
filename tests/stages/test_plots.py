"""Stage `plots` by hand: `saesteer plots`, called as the rule called it,
draws the plots exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run",
    "results/tiny/plots/roles_across_layers.png",
    "results/tiny/plots/output_threshold_curve.png",
    "results/tiny/plots/input_vs_output.png",
    "results/tiny/plots/best_factor_histogram.png",
    "results/tiny/plots/gen_success_filtering.png",
)

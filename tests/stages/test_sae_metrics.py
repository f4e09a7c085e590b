"""Stage `sae_metrics` by hand: `saesteer sae-metrics`, called as the rule called it,
measures the SAE exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "trained_run", "results/tiny/layers/1/sae_metrics.parquet"
)

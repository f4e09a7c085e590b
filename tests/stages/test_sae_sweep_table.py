"""Stage `sae_sweep_table` by hand: `saesteer sae-sweep-table`, called as the rule called
it, writes the rule's table and plot."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "trained_run", "results/tiny/sweep/sae_sweep.parquet", "results/tiny/sweep/sae_sweep.png"
)

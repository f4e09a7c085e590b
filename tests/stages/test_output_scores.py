"""Stage `output_scores` by hand: `saesteer output-scores`, called as the rule called it,
scores the outputs exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run",
    "results/tiny/layers/1/output_scores.parquet",
    "results/tiny/layers/1/output_scores_by_prompt.parquet",
)

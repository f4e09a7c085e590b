"""Stage `corpus` by hand: `saesteer corpus`, called as the rule called it,
builds the documents exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/corpus/documents.parquet"
)

"""Stage `tokenize_corpus` by hand: `saesteer tokenize-corpus`, called as the rule called it,
tokenizes the corpus into chunks exactly as the rule did."""

from tests.helpers import by_hand_equals_the_rule

test_by_hand_equals_the_rule = by_hand_equals_the_rule(
    "tiny_run", "results/tiny/corpus/chunks.parquet"
)

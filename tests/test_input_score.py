"""The input score on hand-built examples whose answers are known."""

import numpy as np
import polars as pl
import pytest

from saesteer.activations import ActivationsError, Example, activations_frame
from saesteer.input_score import (
    InputScoreSettings,
    TokenMapper,
    frequent_tokens,
    score_input,
)
from saesteer.logit_lens import LOGIT_LENS_SCHEMA


def lens(tokens_by_feature: dict[int, list[int]], layer: int = 4) -> pl.DataFrame:
    rows = [
        (layer, f, rank, token, f"w{token}", 0.1)
        for f, tokens in tokens_by_feature.items()
        for rank, token in enumerate(tokens)
    ]
    return pl.DataFrame(rows, schema=LOGIT_LENS_SCHEMA, orient="row")


def peak_on(token: str, token_id: int | None = None, at: int = 1) -> Example:
    """A 3-token example whose max value is at position `at`."""
    tokens = ["w90", "w91", "w92"]
    ids = [90, 91, 92]
    tokens[at] = token
    ids[at] = token_id
    values = [0.5, 0.5, 0.5]
    values[at] = 2.0
    return Example(tokens, values, ids if token_id is not None else None)


@pytest.fixture
def tokenizer(tiny_model):
    return tiny_model[1]


def test_hits_over_examples_with_token_ids(tokenizer):
    # T_3 = {10, 11, 12}; 7 of 12 examples peak on one of them.
    examples = {
        1: [peak_on("w10", 10)] * 4 + [peak_on("w11", 11, at=2)] * 3 + [peak_on("w50", 50)] * 5
    }
    scores = score_input(
        activations_frame(4, examples),
        lens({1: [10, 11, 12]}),
        tokenizer,
        InputScoreSettings(top_k=3),
    )
    assert scores.rows(named=True) == [
        {
            "layer": 4,
            "feature": 1,
            "input_score": 7 / 12,
            "n_examples": 12,
            "n_hits": 7,
            "top_k": 3,
            "input_score_chance": None,  # no corpus given
        }
    ]


def test_the_chance_level_counts_examples_peaking_on_frequent_tokens(tokenizer):
    """Over all features' examples: 4 + 5 of 12 + 4 peak on the frequent {11, 50}."""
    examples = {
        1: [peak_on("w10", 10)] * 4 + [peak_on("w11", 11, at=2)] * 3 + [peak_on("w50", 50)] * 5,
        2: [peak_on("w11", 11)] * 1 + [peak_on("w12", 12)] * 3,
    }
    scores = score_input(
        activations_frame(4, examples),
        lens({1: [10, 11, 12], 2: [12, 13, 14]}),
        tokenizer,
        InputScoreSettings(top_k=3, min_examples=1),
        frequent={11, 50},
    )
    assert scores["input_score_chance"].to_list() == [9 / 16, 9 / 16]
    assert scores["input_score"].to_list() == [7 / 12, 3 / 4]


def test_frequent_tokens_skip_special_ids_and_break_ties_by_id():
    chunks = np.array([[1, 5, 5, 5, 7, 7, 9], [1, 9, 9, 3, 3, 3, 8]])
    # counts: 5 -> 3, 3 -> 3, 9 -> 3, 7 -> 2, 1 -> 2 (special), 8 -> 1
    assert frequent_tokens(chunks, 3, special_ids=[1]) == {3, 5, 9}
    assert frequent_tokens(chunks, 4, special_ids=[1]) == {3, 5, 9, 7}
    assert frequent_tokens(chunks, 4, special_ids=[]) == {3, 5, 9, 1}
    assert frequent_tokens(chunks, 50, special_ids=[1]) == {3, 5, 7, 8, 9}


def test_token_strings_map_by_vocabulary_then_retokenizing(tokenizer):
    vocab = tokenizer.get_vocab()
    mapper = TokenMapper(tokenizer)
    assert mapper("w7", None) == vocab["w7"]  # exact vocabulary piece
    assert mapper("▁w8", None) == vocab["w8"]  # Gemma-style piece: "▁" read as a space
    assert mapper(" w9", None) == vocab["w9"]  # GPT-2-style decoded string
    assert mapper("", None) is None
    assert mapper("w7", 99) == 99  # a source's id wins
    assert dict(mapper.used) == {
        "vocabulary": 1,
        "re-tokenized": 2,
        "unmapped": 1,
        "token id": 1,
    }
    examples = {
        2: [peak_on("w10"), peak_on("▁w11"), peak_on(""), peak_on("w13"), peak_on("w12")] * 2
    }
    top = [vocab[w] for w in ("w10", "w11", "w12", "w20")]
    settings = InputScoreSettings(top_k=3, min_examples=10)
    scores = score_input(activations_frame(4, examples), lens({2: top}), tokenizer, settings)
    assert scores.row(0, named=True)["n_hits"] == 6  # w13 is not in T_3, "" maps to nothing
    assert scores.row(0, named=True)["input_score"] == pytest.approx(0.6)


def test_min_and_max_examples(tokenizer):
    examples = {
        1: [peak_on("w10", 10)] * 9,  # too few for a score
        2: [peak_on("w10", 10)] * 10 + [peak_on("w50", 50)] * 30,  # only the first 20 count
    }
    settings = InputScoreSettings(top_k=1, max_examples=20, min_examples=10)
    scores = score_input(
        activations_frame(4, examples), lens({1: [10], 2: [10], 3: [10]}), tokenizer, settings
    )
    assert scores.select("feature", "input_score", "n_examples", "n_hits").rows() == [
        (1, None, 9, 9),
        (2, 0.5, 20, 10),
        (3, None, 0, 0),  # no examples at all (a dead feature)
    ]


def test_bad_inputs_are_named(tokenizer):
    activations = activations_frame(4, {5: [peak_on("w10", 10)]})
    with pytest.raises(ActivationsError, match=r"activations of features \[5\] that are not in"):
        score_input(activations, lens({1: [10]}), tokenizer, InputScoreSettings(top_k=1))
    with pytest.raises(
        ActivationsError, match=r"fewer than input_score.top_k=3 tokens for features \[5\]"
    ):
        score_input(activations, lens({5: [10, 11]}), tokenizer, InputScoreSettings(top_k=3))

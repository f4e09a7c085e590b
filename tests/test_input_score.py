"""The input score on hand-built examples whose answers are known."""

import json

import numpy as np
import polars as pl
import pytest

from saesteer.activations import Example, activations_frame, parse_feature_json
from saesteer.errors import ActivationsError
from saesteer.input_score import (
    InputScoreSettings,
    TokenMapper,
    frequent_tokens,
    score_input,
)
from saesteer.logit_lens import LOGIT_LENS_SCHEMA
from saesteer.settings import settings_for
from tests.fake_neuronpedia import RECORDED


def lens(tokens_by_feature: dict[int, list[int]], layer: int = 4) -> pl.DataFrame:
    rows = [
        (layer, f, rank, token, f"w{token}", 0.1, None)
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
        settings_for(InputScoreSettings, top_k=3),
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
        settings_for(InputScoreSettings, top_k=3, min_examples=1),
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
    settings = settings_for(InputScoreSettings, top_k=3, min_examples=10)
    scores = score_input(activations_frame(4, examples), lens({2: top}), tokenizer, settings)
    assert scores.row(0, named=True)["n_hits"] == 6  # w13 is not in T_3, "" maps to nothing
    assert scores.row(0, named=True)["input_score"] == pytest.approx(0.6)


def test_min_and_max_examples(tokenizer):
    examples = {
        1: [peak_on("w10", 10)] * 9,  # too few for a score
        2: [peak_on("w10", 10)] * 10 + [peak_on("w50", 50)] * 30,  # only the first 20 count
    }
    settings = settings_for(InputScoreSettings, top_k=1, max_examples=20, min_examples=10)
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
        score_input(
            activations, lens({1: [10]}), tokenizer, settings_for(InputScoreSettings, top_k=1)
        )
    with pytest.raises(
        ActivationsError, match=r"fewer than input_score.top_k=3 tokens for features \[5\]"
    ):
        score_input(
            activations, lens({5: [10, 11]}), tokenizer, settings_for(InputScoreSettings, top_k=3)
        )


# Token mapping with real tokenizers: Gemma-3's SentencePiece (vocabulary pieces with "▁",
# byte-fallback tokens <0x..>; as transformers converts it from the Gemma-3-270M GGUF) and
# SmolLM2's byte-level BPE ("Ġ" for a leading space, UTF-8 bytes as pieces).

TEXT = "The río's naïve café, über 😀 𓀀 antidisestablishmentarianism  two  spaces\nnew line 1234"
LONG_WORD = "antidisestablishmentarianism"


@pytest.fixture(params=["gemma3", "smollm2"])
def real_tokenizer(request):
    return request.getfixturevalue(f"{request.param}_tokenizer")


def test_every_vocabulary_piece_maps_to_its_own_id(real_tokenizer):
    """Neuronpedia shows vocabulary pieces ("▁the", "<0xF0>"): each maps back exactly,
    by vocabulary lookup, for a text with leading spaces, double spaces, a newline, digits,
    accents, an emoji, a character only bytes can spell, and a word of several tokens."""
    ids = real_tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    pieces = real_tokenizer.convert_ids_to_tokens(ids)
    mapper = TokenMapper(real_tokenizer)
    assert [mapper(piece, None) for piece in pieces] == ids
    assert dict(mapper.used) == {"vocabulary": len(ids)}
    # what the text was chosen to hold, so the test covers it
    space = "▁" if "▁" in "".join(pieces) else "Ġ"
    assert sum(p.startswith(space) and len(p) > 1 for p in pieces) >= 5
    assert len(real_tokenizer(f" {LONG_WORD}", add_special_tokens=False)["input_ids"]) >= 3
    # 𓀀 is in neither vocabulary: its 4 UTF-8 bytes are 4 tokens after a lone space piece
    glyph = pieces[pieces.index(space) + 1 :][:4]
    assert len(glyph) == 4 and all(real_tokenizer.decode([mapper(p, None)]) == "�" for p in glyph)
    if space == "▁":
        assert glyph == ["<0xF0>", "<0x93>", "<0x80>", "<0x80>"]  # SentencePiece byte fallback


def test_a_space_written_as_the_sentencepiece_mark_or_as_a_space(real_tokenizer):
    """ "▁the", " the" and (byte-level BPE) "Ġthe" name the same token."""
    expected = real_tokenizer(" the", add_special_tokens=False)["input_ids"]
    assert len(expected) == 1
    mapper = TokenMapper(real_tokenizer)
    assert mapper("▁the", None) == mapper(" the", None) == expected[0]
    assert mapper(real_tokenizer.convert_ids_to_tokens(expected)[0], None) == expected[0]
    assert real_tokenizer.convert_ids_to_tokens(expected)[0] in ("▁the", "Ġthe")
    assert mapper("the", None) != expected[0]  # no space, another token


def test_a_string_of_several_tokens_maps_to_its_first(real_tokenizer):
    """As the public code does (`input_ids[1]`, the first after BOS); not the last."""
    ids = real_tokenizer(f" {LONG_WORD}", add_special_tokens=False)["input_ids"]
    mapper = TokenMapper(real_tokenizer)
    assert mapper(f"▁{LONG_WORD}", None) == ids[0] != ids[-1]
    assert mapper.used == {"re-tokenized": 1}


def test_decoded_ascii_tokens_map_back(real_tokenizer):
    """Some Neuronpedia models show decoded text (" the") instead of pieces: a token that
    decodes to ASCII maps back to itself. A lone UTF-8 byte decodes to "�" and cannot."""
    ids = real_tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    mapper = TokenMapper(real_tokenizer)
    decoded = [(real_tokenizer.decode([i]), i) for i in ids]
    ascii_tokens = [(text, i) for text, i in decoded if text.isascii() and text.strip()]
    assert len(ascii_tokens) >= 10
    assert [mapper(text, None) for text, _ in ascii_tokens] == [i for _, i in ascii_tokens]


def test_the_recorded_gemma_response_maps_with_gemmas_vocabulary(gemma3_tokenizer):
    """A real Neuronpedia response (Gemma-2-2B): its pieces are vocabulary pieces of the
    Gemma-3 real_tokenizer too, but for a few Gemma-2-only merges, which re-tokenize."""
    examples = parse_feature_json(json.loads(RECORDED.read_text()), "recorded")
    mapper = TokenMapper(gemma3_tokenizer)
    ids = [mapper(token, None) for e in examples for token in e.tokens]
    assert None not in ids
    assert dict(mapper.used) == {"vocabulary": 378, "re-tokenized": 3}
    max_tokens = [e.tokens[e.max_token_index] for e in examples]
    vocab = gemma3_tokenizer.get_vocab()
    assert [mapper(t, None) for t in max_tokens] == [vocab[t] for t in max_tokens]

"""A page's tokens: texts against the tokenizer's own decode, shades counted by hand,
contexts centred on their strongest token, peaks counted as the input score counts."""

from __future__ import annotations

import polars as pl
import pytest

from saesteer.explorer.tokens import SHADES, contexts, shade, token_pieces
from tests.explorer.tables import examples

TEXT = "The quick brown fox, naïvely jumping\nover 3 dogs — ünïcödé 東京."


@pytest.mark.parametrize("name", ["gemma3_tokenizer", "smollm2_tokenizer"])
def test_token_pieces_join_to_the_decoded_text(name, request):
    """SentencePiece (Gemma-3) and byte-level BPE (SmolLM2): the pieces rebuild the text
    the tokenizer decodes, and a word's piece keeps its leading space."""
    tokenizer = request.getfixturevalue(name)
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    pieces = token_pieces(tokenizer.backend_tokenizer, ids, tokenizer.convert_ids_to_tokens(ids))
    assert len(pieces) == len(ids)
    assert "".join(pieces) == tokenizer.decode(ids)
    word = next(i for i, p in enumerate(pieces) if "brown" in p)
    assert pieces[word] == " brown"


def test_a_bulk_exports_vocabulary_pieces_are_decoded(gemma3_tokenizer):
    """Pieces without ids (Neuronpedia's bulk export) decode as their ids would; display
    text that is not the vocabulary's pieces is shown as stored."""
    decoder = gemma3_tokenizer.backend_tokenizer
    ids = gemma3_tokenizer("The quick brown fox", add_special_tokens=False)["input_ids"]
    pieces = gemma3_tokenizer.convert_ids_to_tokens(ids)
    assert "▁quick" in pieces
    assert token_pieces(decoder, None, pieces) == token_pieces(decoder, ids, pieces)
    assert token_pieces(decoder, None, ["The", " quick"]) == ["The", " quick"]


def test_the_max_mark_moves_to_the_token_that_completes_its_character(smollm2_tokenizer):
    ids = smollm2_tokenizer("a 東京", add_special_tokens=False)["input_ids"]
    pieces = token_pieces(smollm2_tokenizer.backend_tokenizer, ids, [""] * len(ids))
    first = pieces.index("")  # the first bytes of a split character show nothing
    examples = pl.DataFrame(
        {
            "tokens": [[""] * len(ids)],
            "token_ids": [ids],
            "values": [[1.0] * len(ids)],
            "max_value": [1.0],
            "max_token_index": [first],
        }
    )
    shown = contexts(examples, smollm2_tokenizer.backend_tokenizer, 1)[0]["tokens"]
    marked = [t["text"] for t in shown if t["max"]]
    assert len(marked) == 1 and marked[0] != "" and marked[0] in "".join(pieces)


def test_token_pieces_without_ids_are_the_stored_strings():
    assert token_pieces(None, [1, 2], ["a", "b"]) == ["a", "b"]
    assert token_pieces(object(), [-1, 2], ["x", "y"]) == ["x", "y"]


def test_shade_scales_to_the_largest_activation():
    assert [shade(v, 8.0) for v in (0.0, -1.0, 0.01, 1.0, 1.01, 7.99, 8.0)] == [
        0,
        0,
        1,
        1,
        2,
        SHADES,
        SHADES,
    ]
    assert shade(1.0, 0.0) == 0


def test_contexts_strongest_first_with_the_max_token_marked():
    shown = contexts(examples(), None, 2)
    assert [c["max_value"] for c in shown] == [4.0, 2.0]
    first, second = shown
    assert [t["text"] for t in first["tokens"]] == ["d", "e", "f"]
    assert [t["max"] for t in first["tokens"]] == [True, False, False]
    assert [t["max"] for t in second["tokens"]] == [False, True, False]
    # Scaled to the feature's largest activation (4.0), not each example's own.
    assert [t["shade"] for t in first["tokens"]] == [SHADES, 0, 1]
    assert [t["shade"] for t in second["tokens"]] == [0, 4, 2]


def test_a_long_context_is_centred_on_its_strongest_token():
    from saesteer.explorer.tokens import CONTEXT_SIDE

    n, strongest = 40, 30
    values = [0.0] * n
    values[strongest] = 5.0
    example = pl.DataFrame(
        {
            "layer": [3],
            "feature": [7],
            "example": [0],
            "tokens": [[f"t{i} " for i in range(n)]],
            "token_ids": [None],
            "values": [values],
            "max_value": [5.0],
            "max_token_index": [strongest],
        },
        schema_overrides={"token_ids": pl.List(pl.Int64)},
    )
    (shown,) = contexts(example, None, 1)
    texts = [t["text"] for t in shown["tokens"]]
    assert texts[0] == f"t{strongest - CONTEXT_SIDE} " and texts[-1] == f"t{n - 1} "
    assert shown["tokens"][CONTEXT_SIDE]["max"] and texts[CONTEXT_SIDE] == f"t{strongest} "


def test_peak_counts_map_tokens_and_cut_examples_as_the_input_score_does(gemma3_tokenizer):
    """Examples without token ids (Neuronpedia's pieces and display strings) are mapped to
    ids as the input score maps them, and only its first `max_examples` count: the counts
    of the score's top-k tokens add up to its n_hits."""
    from saesteer.explorer.tokens import peak_tokens
    from saesteer.input_score import InputScoreSettings, score_input

    vocab = gemma3_tokenizer.get_vocab()
    pieces = ["▁ocean", " sea", "▁ocean", "▁blue", "▁ocean"]  # a piece, a display string
    examples = pl.DataFrame(
        {
            "layer": [0] * 5,
            "feature": [7] * 5,
            "example": [4, 0, 1, 2, 3],  # stored out of order: the first 3 are 0, 1, 2
            "tokens": [["▁a", p] for p in pieces],
            "token_ids": [None] * 5,
            "values": [[0.0, 1.0]] * 5,
            "max_value": [1.0] * 5,
            "max_token_index": [1] * 5,
        },
        schema_overrides={"token_ids": pl.List(pl.Int64)},
    )
    ocean, sea = vocab["▁ocean"], vocab["▁sea"]
    lens = pl.DataFrame(
        {"layer": [0, 0], "feature": [7, 7], "rank": [0, 1], "token_id": [ocean, sea]}
    )
    settings = InputScoreSettings(top_k=2, max_examples=3, min_examples=1)
    scores = score_input(examples, lens, gemma3_tokenizer, settings)
    from saesteer.input_score import TokenMapper

    mapper = TokenMapper(gemma3_tokenizer.backend_tokenizer)
    peaks = peak_tokens(examples, mapper, scores["n_examples"][0])
    assert scores["n_hits"][0] == 2  # examples 0 (" sea") and 1 ("▁ocean"); 2 is "▁blue"
    assert peaks[ocean] + peaks[sea] == scores["n_hits"][0]
    assert (peaks[ocean], peaks[sea], sum(peaks.values())) == (1, 1, 3)

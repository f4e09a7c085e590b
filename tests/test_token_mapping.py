"""Input-score token mapping with real tokenizers: Gemma-3's SentencePiece (vocabulary
pieces with "▁", byte-fallback tokens <0x..>; as transformers converts it from the
Gemma-3-270M GGUF) and SmolLM2's byte-level BPE ("Ġ" for a leading space, UTF-8 bytes as
pieces)."""

from __future__ import annotations

import json

import pytest

from saesteer.activations import parse_feature_json
from saesteer.input_score import TokenMapper
from tests.fake_neuronpedia import RECORDED

TEXT = "The río's naïve café, über 😀 𓀀 antidisestablishmentarianism  two  spaces\nnew line 1234"
LONG_WORD = "antidisestablishmentarianism"


@pytest.fixture(params=["gemma3", "smollm2"])
def tokenizer(request):
    return request.getfixturevalue(f"{request.param}_tokenizer")


def test_every_vocabulary_piece_maps_to_its_own_id(tokenizer):
    """Neuronpedia shows vocabulary pieces ("▁the", "<0xF0>"): each maps back exactly,
    by vocabulary lookup, for a text with leading spaces, double spaces, a newline, digits,
    accents, an emoji, a character only bytes can spell, and a word of several tokens."""
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    pieces = tokenizer.convert_ids_to_tokens(ids)
    mapper = TokenMapper(tokenizer)
    assert [mapper(piece, None) for piece in pieces] == ids
    assert dict(mapper.used) == {"vocabulary": len(ids)}
    # what the text was chosen to hold, so the test covers it
    space = "▁" if "▁" in "".join(pieces) else "Ġ"
    assert sum(p.startswith(space) and len(p) > 1 for p in pieces) >= 5
    assert len(tokenizer(f" {LONG_WORD}", add_special_tokens=False)["input_ids"]) >= 3
    # 𓀀 is in neither vocabulary: its 4 UTF-8 bytes are 4 tokens after a lone space piece
    glyph = pieces[pieces.index(space) + 1 :][:4]
    assert len(glyph) == 4 and all(tokenizer.decode([mapper(p, None)]) == "�" for p in glyph)
    if space == "▁":
        assert glyph == ["<0xF0>", "<0x93>", "<0x80>", "<0x80>"]  # SentencePiece byte fallback


def test_a_space_written_as_the_sentencepiece_mark_or_as_a_space(tokenizer):
    """ "▁the", " the" and (byte-level BPE) "Ġthe" name the same token."""
    expected = tokenizer(" the", add_special_tokens=False)["input_ids"]
    assert len(expected) == 1
    mapper = TokenMapper(tokenizer)
    assert mapper("▁the", None) == mapper(" the", None) == expected[0]
    assert mapper(tokenizer.convert_ids_to_tokens(expected)[0], None) == expected[0]
    assert tokenizer.convert_ids_to_tokens(expected)[0] in ("▁the", "Ġthe")
    assert mapper("the", None) != expected[0]  # no space, another token


def test_a_string_of_several_tokens_maps_to_its_first(tokenizer):
    """As the public code does (`input_ids[1]`, the first after BOS); not the last."""
    ids = tokenizer(f" {LONG_WORD}", add_special_tokens=False)["input_ids"]
    mapper = TokenMapper(tokenizer)
    assert mapper(f"▁{LONG_WORD}", None) == ids[0] != ids[-1]
    assert mapper.used == {"re-tokenized": 1}


def test_decoded_ascii_tokens_map_back(tokenizer):
    """Some Neuronpedia models show decoded text (" the") instead of pieces: a token that
    decodes to ASCII maps back to itself. A lone UTF-8 byte decodes to "�" and cannot."""
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    mapper = TokenMapper(tokenizer)
    decoded = [(tokenizer.decode([i]), i) for i in ids]
    ascii_tokens = [(text, i) for text, i in decoded if text.isascii() and text.strip()]
    assert len(ascii_tokens) >= 10
    assert [mapper(text, None) for text, _ in ascii_tokens] == [i for _, i in ascii_tokens]


def test_the_recorded_gemma_response_maps_with_gemmas_vocabulary(gemma3_tokenizer):
    """A real Neuronpedia response (Gemma-2-2B): its pieces are vocabulary pieces of the
    Gemma-3 tokenizer too, but for a few Gemma-2-only merges, which re-tokenize."""
    examples = parse_feature_json(json.loads(RECORDED.read_text()), "recorded")
    mapper = TokenMapper(gemma3_tokenizer)
    ids = [mapper(token, None) for e in examples for token in e.tokens]
    assert None not in ids
    assert dict(mapper.used) == {"vocabulary": 378, "re-tokenized": 3}
    max_tokens = [e.tokens[e.max_token_index] for e in examples]
    vocab = gemma3_tokenizer.get_vocab()
    assert [mapper(t, None) for t in max_tokens] == [vocab[t] for t in max_tokens]

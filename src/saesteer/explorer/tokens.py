"""The tokens a feature page shows: the run's tokenizer, each token as the text it adds,
the top activating contexts with their tokens shaded by activation, and which tokens
the examples peak on."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from saesteer.input_score import TokenMapper

# Highlight shades of a token by its activation over the feature's largest: 1 (faint) to 8.
SHADES = 8


def token_decoder(model_json: str | Path):
    """The run's tokenizer as a `tokenizers.Tokenizer`, which decodes what transformers'
    fast tokenizer decodes (it is that tokenizer's backend). Read from the model folder's
    tokenizer.json when there is one, without importing transformers (~3 s a job)."""
    from tokenizers import Tokenizer

    from saesteer.io import read_json
    from saesteer.models import load_tokenizer

    path = Path(read_json(model_json)["path"]) / "tokenizer.json"
    if path.is_file():
        return Tokenizer.from_file(str(path))
    return load_tokenizer(model_json).backend_tokenizer


def token_pieces(decoder, ids: Sequence[int] | None, tokens: Sequence[str]) -> list[str]:
    """Each token as the text it adds to the context. Decoding tokens one by one loses what
    a decoder strips at a text's start (SentencePiece's leading space) and splits a
    character whose bytes span tokens, so each piece is what the token adds to the text
    decoded before it; a token holding only the first bytes of a character adds nothing,
    and the one completing it adds the whole character. Without a tokenizer, or for text
    that is not the vocabulary's pieces (Neuronpedia's API examples come as display
    text), the stored strings are shown. `decoder` is a
    `tokenizers.Tokenizer` (see `token_decoder`)."""
    if decoder is not None and ids is None:
        # A bulk export stores vocabulary pieces ("▁the"), which decode like their ids.
        found = [decoder.token_to_id(t) for t in tokens]
        ids = None if None in found else found
    if decoder is None or ids is None or any(i < 0 for i in ids):
        return list(tokens)
    texts = decoder.decode_batch(
        [list(ids[: i + 1]) for i in range(len(ids))], skip_special_tokens=False
    )
    pieces, done = [], ""
    for i, text in enumerate(texts):
        if text.endswith("\ufffd") and i + 1 < len(texts):
            pieces.append("")  # a character's first bytes: a later token completes it
            continue
        if text.startswith(done):
            pieces.append(text[len(done) :])
        else:  # a decoder that rewrites earlier text (rare): the token on its own
            pieces.append(decoder.decode([ids[i]], skip_special_tokens=False))
        done = text
    return pieces


def shade(value: float, largest: float) -> int:
    """0 for a silent token, else 1..SHADES by the value's share of the largest."""
    if value <= 0 or largest <= 0:
        return 0
    return max(1, min(SHADES, math.ceil(SHADES * value / largest)))


def peak_tokens(
    examples: pl.DataFrame, mapper: TokenMapper | None, n_examples: int | None = None
) -> Counter:
    """How many of the first `n_examples` examples (all without it) peak on each token id,
    each token mapped to its id as the input score maps it (`mapper`: the source's id, else
    the vocabulary, else re-tokenized; without a mapper, the source's ids only)."""
    rows = examples.sort("example")
    if n_examples is not None:
        rows = rows.head(n_examples)
    peaks: Counter = Counter()
    for tokens, ids, index in rows.select("tokens", "token_ids", "max_token_index").iter_rows():
        token_id = ids[index] if ids is not None else None
        if mapper is not None:
            token_id = mapper(tokens[index], token_id)
        if token_id is not None:
            peaks[token_id] += 1
    return peaks


# Tokens shown on each side of a context's strongest token.
CONTEXT_SIDE = 12


def contexts(examples: pl.DataFrame, decoder, n: int, hits: set[int] | None = None) -> list[dict]:
    """The `n` strongest examples, each a list of highlighted tokens centred on its
    strongest (at most CONTEXT_SIDE on each side); the shade is scaled to the feature's
    largest activation and each example's max token is marked. With the
    input score's top logit-lens token ids `hits`, each example says whether its strongest
    token is one of them (None where the source gave no token ids)."""
    top = examples.sort("max_value", descending=True, maintain_order=True).head(n)
    largest = float(top["max_value"].max() or 0.0)
    shown = []
    for row in top.iter_rows(named=True):
        pieces = token_pieces(decoder, row["token_ids"], row["tokens"])
        values = row["values"]
        strongest = row["max_token_index"]
        while strongest + 1 < len(pieces) and pieces[strongest] == "":
            strongest += 1  # the token that completes its character shows it
        ids = row["token_ids"]
        tokens = [
            {"text": piece, "value": value, "shade": shade(value, largest), "max": i == strongest}
            for i, (piece, value) in enumerate(zip(pieces, values, strict=True))
        ]
        # centred on the strongest token (decoded whole first, so each piece reads right)
        window = tokens[max(0, strongest - CONTEXT_SIDE) : strongest + CONTEXT_SIDE + 1]
        hit = None if hits is None or ids is None else ids[row["max_token_index"]] in hits
        shown.append({"max_value": row["max_value"], "hit": hit, "tokens": window})
    return shown

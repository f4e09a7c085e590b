"""The input score: how many of a feature's top activating examples peak on one of its
top-k logit-lens tokens (docs/method.md, "Activations and the input score")."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import polars as pl

from saesteer.errors import ActivationsError

log = logging.getLogger(__name__)

INPUT_SCORES_SCHEMA = {
    "layer": pl.Int32,
    "feature": pl.Int64,
    "input_score": pl.Float64,  # null when n_examples < min_examples
    "n_examples": pl.Int32,
    "n_hits": pl.Int32,
    "top_k": pl.Int32,
    # The layer's chance level: the share of its examples (all features) whose max token is
    # one of the corpus's top_k most frequent tokens, i.e. the score of a feature whose
    # logit lens named just the frequent tokens. Null without a corpus.
    "input_score_chance": pl.Float64,
}


@dataclass(frozen=True)
class InputScoreSettings:
    SECTIONS: ClassVar = ("input_score",)
    top_k: int
    max_examples: int  # the first examples of each feature that count
    min_examples: int  # fewer gives no score (the public code's cut-off)


class TokenMapper:
    """A token of an example → the model's token id, in order of faithfulness:
    the id the source gives; an exact vocabulary lookup of the token string (Neuronpedia
    shows vocabulary pieces such as Gemma's "▁the"); else re-tokenizing the string (with
    "▁" read as a space) and taking its first token, as the public code does. Takes a
    transformers tokenizer or its `tokenizers.Tokenizer` backend."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._vocab: dict | None = None  # read at the first token without an id (0.6 s)
        self.used: Counter = Counter()

    @property
    def vocab(self) -> dict:
        if self._vocab is None:
            self._vocab = self.tokenizer.get_vocab()
        return self._vocab

    def __call__(self, token: str, token_id: int | None) -> int | None:
        if token_id is not None:
            self.used["token id"] += 1
            return token_id
        if token in self.vocab:
            self.used["vocabulary"] += 1
            return self.vocab[token]
        encoded = self.tokenizer.encode(token.replace("▁", " "), add_special_tokens=False)
        ids = getattr(encoded, "ids", encoded)  # a `tokenizers.Tokenizer` gives an Encoding
        self.used["re-tokenized" if ids else "unmapped"] += 1
        return ids[0] if ids else None


def score_input(
    activations: pl.DataFrame,
    logit_lens: pl.DataFrame,
    tokenizer,
    settings: InputScoreSettings,
    frequent: set[int] | None = None,
) -> pl.DataFrame:
    """One row per feature of `logit_lens`: the share of its first `max_examples`
    examples whose max-activating token is among its top-k logit-lens tokens; with the
    layer's chance level against the `frequent` tokens (see `frequent_tokens`)."""
    top_tokens = _top_tokens(logit_lens, settings.top_k)
    unknown = set(activations["feature"].unique().to_list()) - set(top_tokens)
    if unknown:
        raise ActivationsError(
            f"activations of features {sorted(unknown)[:10]} that are not in the feature list"
        )
    mapper = TokenMapper(tokenizer)
    hits: Counter = Counter()
    counts: Counter = Counter()
    n_frequent = 0
    examples = activations.filter(pl.col("example") < settings.max_examples)
    for feature, tokens, ids, index in examples.select(
        "feature", "tokens", "token_ids", "max_token_index"
    ).iter_rows():
        token_id = mapper(tokens[index], None if ids is None else ids[index])
        counts[feature] += 1
        hits[feature] += token_id in top_tokens[feature]
        n_frequent += frequent is not None and token_id in frequent
    log.info("max-activating tokens mapped by: %s", dict(mapper.used))
    n_examples = sum(counts.values())
    chance = n_frequent / n_examples if frequent is not None and n_examples else None
    layer = logit_lens["layer"][0]
    return pl.DataFrame(
        [
            {
                "layer": layer,
                "feature": f,
                "input_score": hits[f] / counts[f] if counts[f] >= settings.min_examples else None,
                "n_examples": counts[f],
                "n_hits": hits[f],
                "top_k": settings.top_k,
                "input_score_chance": chance,
            }
            for f in top_tokens
        ],
        schema=INPUT_SCORES_SCHEMA,
    )


def frequent_tokens(chunks: np.ndarray, k: int, special_ids: list[int]) -> set[int]:
    """The `k` most frequent token ids of `chunks` (any shape), special tokens aside; ties
    go to the lower id."""
    counts = np.bincount(chunks.ravel())
    counts[[i for i in special_ids if i < len(counts)]] = 0
    order = np.lexsort((np.arange(len(counts)), -counts))
    return {int(i) for i in order[:k] if counts[i] > 0}


def _top_tokens(logit_lens: pl.DataFrame, top_k: int) -> dict[int, set[int]]:
    lens = logit_lens.filter(pl.col("rank") < top_k)
    by_feature = lens.group_by("feature", maintain_order=True).agg("token_id")
    top = {f: set(ids) for f, ids in by_feature.iter_rows()}
    short = [f for f, ids in top.items() if len(ids) < top_k]
    if short:
        raise ActivationsError(
            f"logit lens has fewer than input_score.top_k={top_k} tokens for features {short[:5]}"
        )
    return top

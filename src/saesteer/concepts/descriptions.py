"""A concept per feature, for concept steering: its Neuronpedia explanation when there is
one, else a description derived from the feature's own evidence."""

from __future__ import annotations

from collections import Counter

import polars as pl

CONCEPTS_SCHEMA = {
    "layer": pl.Int32,
    "feature": pl.Int64,
    "concept": pl.Utf8,  # the description judges and the prompting baseline read
    "description_source": pl.Utf8,  # "neuronpedia" or "derived"
}


def _readable(tokens, n: int) -> list[str]:
    """The first `n` distinct tokens that read as words, stripped."""
    out: list[str] = []
    for token in tokens:
        # SentencePiece and byte-level BPE spell spaces and newlines with these marks
        word = token.replace("▁", " ").replace("Ġ", " ").replace("Ċ", "\n").strip()
        if any(c.isalnum() for c in word) and word.lower() not in (w.lower() for w in out):
            out.append(word)
        if len(out) == n:
            break
    return out


def derived_description(lens_tokens: list[str], active_tokens: list[str]) -> str:
    """A description from the feature's own evidence: what it promotes (logit lens) and
    what it fires on (its top activating tokens, most frequent first)."""
    promoted = _readable(lens_tokens, 5)
    fires = _readable([t for t, _ in Counter(active_tokens).most_common()], 3)
    parts = []
    if promoted:
        parts.append("words like " + ", ".join(f'"{w}"' for w in promoted))
    if fires:
        parts.append("contexts around " + ", ".join(f'"{w}"' for w in fires))
    return " and ".join(parts) or "an unknown concept"


def concept_list(
    layer: int,
    features: list[int],
    logit_lens: pl.DataFrame,
    activations: pl.DataFrame,
    explanations: dict[int, str],
) -> pl.DataFrame:
    """One concept per feature: its Neuronpedia explanation when there is one, else a
    description derived from its logit-lens and top-activation tokens."""
    lens = logit_lens.sort("feature", "rank").group_by("feature", maintain_order=True).agg("token")
    lens_tokens = dict(lens.iter_rows())
    active = activations.with_columns(
        top=pl.col("tokens").list.get(pl.col("max_token_index"), null_on_oob=True)
    )
    active_tokens = dict(active.group_by("feature").agg(pl.col("top").drop_nulls()).iter_rows())
    rows = []
    for f in features:
        if explanations.get(f):
            rows.append((layer, f, explanations[f], "neuronpedia"))
        else:
            text = derived_description(lens_tokens.get(f, []), active_tokens.get(f, []))
            rows.append((layer, f, text, "derived"))
    return pl.DataFrame(rows, schema=CONCEPTS_SCHEMA, orient="row")

"""The steered text a feature page shows: continuations at every factor tried, with the
tokens that count toward GenSuccess@20 marked, and a concept feature's rated answers."""

from __future__ import annotations

import polars as pl

from saesteer.config import GEN_SUCCESS_TOP_K
from saesteer.explorer.tokens import token_pieces


def continuations(
    generations: pl.DataFrame,
    best_factor: float | None,
    n: int,
    decoder=None,
    success_ids: set[int] | None = None,
) -> list[dict]:
    """The first `n` prefixes, each with its continuation at every factor tried. With the
    tokenizer `decoder` and the feature's top-20 logit-lens token ids `success_ids`, each
    continuation is split into its tokens (as GenSuccess tokenizes it), the ones that count
    toward GenSuccess@20 marked, and their number is the row's GenSuccess@20."""
    prefixes = sorted(generations["prefix_id"].unique().to_list())[:n]
    shown = []
    for prefix_id in prefixes:
        rows = generations.filter(pl.col("prefix_id") == prefix_id).sort("factor")
        shown.append(
            {
                "prefix": rows["prefix"][0],
                "rows": [
                    {
                        "factor": r["factor"],
                        "continuation": r["continuation"],
                        "best": r["factor"] == best_factor,
                        **_success_tokens(r["continuation"], decoder, success_ids),
                    }
                    for r in rows.iter_rows(named=True)
                ],
            }
        )
    return shown


def success_by_prefix(
    generations: pl.DataFrame, best_factor: float | None, decoder, success_ids: set[int] | None
) -> list[dict]:
    """Each prefix's GenSuccess@20 at the best factor (its count of the feature's top-20
    logit-lens tokens), every prefix; none without a best factor or a tokenizer."""
    if best_factor is None or decoder is None or success_ids is None:
        return []
    rows = generations.filter(pl.col("factor") == best_factor).sort("prefix_id")
    return [
        {
            "prefix": r["prefix"],
            "hits": _success_tokens(r["continuation"], decoder, success_ids)["hits"],
        }
        for r in rows.iter_rows(named=True)
    ]


def gen_success_ids(logit_lens: pl.DataFrame) -> set[int]:
    """The token ids that count toward GenSuccess@20: the feature's top GEN_SUCCESS_TOP_K
    logit-lens tokens, as `gen_metrics.gen_success_counts` takes them (rank < k)."""
    return set(logit_lens.filter(pl.col("rank") < GEN_SUCCESS_TOP_K)["token_id"])


def _success_tokens(text: str, decoder, success_ids: set[int] | None) -> dict:
    """The continuation's tokens with GenSuccess@20's hits marked, and their count."""
    if decoder is None or success_ids is None:
        return {"pieces": None, "hits": None}
    ids = decoder.encode(text, add_special_tokens=False).ids
    pieces = token_pieces(decoder, ids, [""] * len(ids))
    marked = [{"text": p, "hit": i in success_ids} for p, i in zip(pieces, ids, strict=True)]
    return {"pieces": marked, "hits": sum(i in success_ids for i in ids)}


def judge_label(judge: str, proxy: bool) -> str:
    """Who rated: the offline proxy (embedding similarity and perplexity) or an LLM."""
    if proxy:
        return f"proxy judge (no LLM): {judge.removeprefix('proxy:')}"
    return f"LLM judge: {judge}"


def concept_answers(ratings: pl.DataFrame) -> dict | None:
    """A concept feature's SAE-steered answers with their three ratings, and its judge."""
    rows = ratings.filter(pl.col("method") == "sae").sort("split", "factor", "instruction_id")
    if rows.is_empty():
        return None
    return {
        "concept": rows["concept"][0],
        "judge": judge_label(rows["judge"][0], bool(rows["judge_proxy"][0])),
        "rows": rows.select(
            "split",
            "factor",
            "instruction",
            "response",
            "concept_rating",
            "instruction_rating",
            "fluency_rating",
            "harmonic",
        ).to_dicts(),
    }

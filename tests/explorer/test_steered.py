"""A page's steered text: GenSuccess@20's tokens marked as gen_metrics counts them, the
judge named, a concept feature's SAE answers only."""

from __future__ import annotations

import polars as pl
import pytest

from saesteer.explorer.steered import concept_answers, continuations, judge_label
from tests.explorer.tables import layer_tables


def test_judge_label_names_proxy_and_llm():
    assert judge_label("proxy:minilm+ppl:m", True) == "proxy judge (no LLM): minilm+ppl:m"
    assert judge_label("openai:gpt-4o-mini", False) == "LLM judge: openai:gpt-4o-mini"


def test_concept_answers_only_the_sae_rows():
    answers = concept_answers(layer_tables().concept_ratings)
    assert [r["response"] for r in answers["rows"]] == ["HI!"]
    assert answers["judge"] == "proxy judge (no LLM): minilm"
    assert concept_answers(layer_tables().concept_ratings.filter(pl.col("method") == "x")) is None


@pytest.mark.parametrize("name", ["gemma3_tokenizer", "smollm2_tokenizer"])
def test_continuations_mark_the_tokens_gen_success_counts(name, request):
    """Per continuation, the marked tokens are the ones GenSuccess@20 counts: their number
    equals `gen_metrics.gen_success_counts` on the same rows, and the pieces rebuild it."""
    from saesteer.gen_metrics import gen_success_counts

    tokenizer = request.getfixturevalue(name)
    texts = [" the ocean is deep and the sea is blue", " nothing here", " ocean ocean sea"]
    generations = pl.DataFrame(
        {
            "feature": [7, 7, 7],
            "factor": [0.0, 4.0, 8.0],
            "prefix_id": [0, 0, 0],
            "prefix": ["Once"] * 3,
            "continuation": texts,
        }
    )
    words = tokenizer([" ocean", " sea", " blue"], add_special_tokens=False)["input_ids"]
    top = [ids[0] for ids in words] + list(range(100, 117))  # 20 logit-lens tokens
    logit_lens = pl.DataFrame({"feature": [7] * 20, "rank": list(range(20)), "token_id": top})
    (shown,) = continuations(generations, 4.0, 1, tokenizer.backend_tokenizer, set(top))
    expected = gen_success_counts(generations, logit_lens, tokenizer, [20])["hits_20"]
    assert [r["hits"] for r in shown["rows"]] == expected.to_list()
    assert shown["rows"][0]["hits"] >= 3  # ocean, sea, blue
    for row, text in zip(shown["rows"], texts, strict=True):
        assert "".join(p["text"] for p in row["pieces"]) == tokenizer.decode(
            tokenizer(text, add_special_tokens=False)["input_ids"]
        )
        assert sum(p["hit"] for p in row["pieces"]) == row["hits"]

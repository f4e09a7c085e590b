"""GenSuccess@k and perplexity against hand computations on fixed texts."""

import json
import math

import polars as pl
import pytest
import torch

from saesteer import gen_metrics
from saesteer.errors import ArtifactError, ConfigError
from saesteer.gen_metrics import (
    GEN_METRICS_SCHEMA,
    gen_success_counts,
    perplexities,
    score_generations,
    text_tokens,
)
from saesteer.generations_table import GENERATIONS_SCHEMA
from tests.helpers import TINY_VOCAB


def lens_frame(tops: dict[int, list[int]]) -> pl.DataFrame:
    """Logit-lens rows: feature f's token ids in rank order (20 each, padded with w100..)."""
    rows = []
    for feature, ids in tops.items():
        ids = ids + [i for i in range(100, 128) if i not in ids][: 20 - len(ids)]
        rows += [(feature, rank, token, f"w{token - 3}") for rank, token in enumerate(ids)]
    return pl.DataFrame(rows, schema=["feature", "rank", "token_id", "token"], orient="row")


def generations(rows) -> pl.DataFrame:
    """GENERATIONS_SCHEMA rows from (feature, factor, prefix_id, prefix, continuation)."""
    frame = pl.DataFrame(
        rows, schema=["feature", "factor", "prefix_id", "prefix", "continuation"], orient="row"
    )
    frame = frame.with_columns(
        layer=pl.lit(2),
        text=pl.col("prefix") + pl.col("continuation"),
        n_tokens=pl.lit(0),
        seed=pl.lit(0),
        source=pl.lit("test"),
    )
    return frame.select(list(GENERATIONS_SCHEMA)).cast(GENERATIONS_SCHEMA)


# Word w<n> is token n + 3 in the tiny tokenizer.
FIXED = generations(
    [
        (7, 0.0, 0, "w1 w2", " w5 w5 w9"),
        (7, 0.0, 1, "w3", " w6"),
        (7, 4.0, 0, "w1 w2", " w5 w6 w7 w5 w8"),
        (7, 4.0, 1, "w3", ""),
        (9, 4.0, 0, "w1 w2", " w5 w6 w7 w5 w8"),
        (9, 4.0, 1, "w3", " w30 w30"),
    ]
)
# Feature 7: w5 rank 0, w6 rank 3, w7 rank 10; feature 9: w30 rank 0, w8 rank 4.
TOPS = {7: [8, 50, 51, 9, 52, 53, 54, 55, 56, 57, 10], 9: [33, 60, 61, 62, 11]}


def test_gen_success_counts_tokens_in_the_top_k_repeats_included(tiny_model):
    _, tokenizer = tiny_model
    hits = gen_success_counts(FIXED, lens_frame(TOPS), tokenizer, (1, 5, 20))
    assert hits.rows() == [
        # tokens, @1, @5, @20
        (3, 2, 2, 2),  # w5 w5 w9: w5 twice at rank 0
        (1, 0, 1, 1),  # w6: rank 3
        (5, 2, 3, 4),  # w5 w6 w7 w5 w8: w5 x2 (@1), + w6 (@5), + w7 rank 10 (@20)
        (0, 0, 0, 0),  # empty continuation
        (5, 0, 1, 1),  # feature 9: w8 rank 4
        (2, 2, 2, 2),  # w30 twice at rank 0
    ]


def test_gen_success_at_k_stops_before_rank_k(tiny_model):
    """Top-k is ranks 0..k-1: with a 25-token logit lens, the tokens at ranks 1, 5 and 20
    are the first ones outside the top 1, 5 and 20."""
    _, tokenizer = tiny_model
    lens = pl.DataFrame(
        [(7, rank, 10 + rank, f"w{7 + rank}") for rank in range(25)],
        schema=["feature", "rank", "token_id", "token"],
        orient="row",
    )
    ranks = [0, 1, 4, 5, 19, 20, 24]
    text = " " + " ".join(f"w{7 + r}" for r in ranks)  # word w<n> is token n + 3
    rows = generations([(7, 4.0, 0, "w1", text)])
    assert gen_success_counts(rows, lens, tokenizer, (1, 5, 20)).rows() == [(7, 1, 3, 5)]


def test_gen_success_needs_every_feature_and_enough_ranks(tiny_model):
    _, tokenizer = tiny_model
    with pytest.raises(ArtifactError, match=r"no logit-lens tokens for features \[9\]"):
        gen_success_counts(FIXED, lens_frame({7: TOPS[7]}), tokenizer, (1, 5, 20))
    short = lens_frame(TOPS).filter(pl.col("rank") < 5)
    with pytest.raises(ConfigError, match="GenSuccess@20 needs 20"):
        gen_success_counts(FIXED, short, tokenizer, (1, 5, 20))


@pytest.mark.parametrize("shared_min", [1, 3, 10**9], ids=["shared", "mixed", "whole"])
@pytest.mark.parametrize("of", ["text", "continuation"])
def test_perplexity_equals_the_models_own_loss_text_by_text(
    any_tiny_model, of, shared_min, monkeypatch
):
    """Both batched modes (a shared prefix run once with continuations batched on its
    cache; whole texts right-padded across prefixes), alone and mixed, against one
    unpadded forward per text with HF's own cross-entropy (`labels`, -100 on the tokens
    that are not scored)."""
    model, tokenizer = any_tiny_model
    monkeypatch.setattr(gen_metrics, "SHARED_PREFIX_MIN", shared_min)
    monkeypatch.setattr(gen_metrics, "LOGIT_ELEMENTS", TINY_VOCAB * 3)  # chunks of 3 rows
    prefixes, continuations = text_tokens(FIXED.head(5), tokenizer)  # prefixes used 3 and 2 times
    got = perplexities(model, prefixes, continuations, of == "text", batch_size=2)
    for prefix, continuation, value in zip(prefixes, continuations, got, strict=True):
        ids = torch.tensor([prefix + continuation])
        labels = ids.clone()
        labels[0, : 1 if of == "text" else len(prefix)] = -100
        if (labels[0, 1:] != -100).sum() == 0:
            assert value is None  # nothing to score: an empty continuation
            continue
        expected = math.exp(model(ids, labels=labels).loss.item())
        assert value == pytest.approx(expected, rel=1e-5)


def test_text_tokens_are_bos_prefix_and_continuation(tiny_model):
    _, tokenizer = tiny_model
    assert text_tokens(FIXED[:1], tokenizer) == ([[1, 4, 5]], [[8, 8, 12]])  # w1 w2 | w5 w5 w9


def test_an_unknown_perplexity_mode_is_refused(tiny_model):
    model, tokenizer = tiny_model
    with pytest.raises(ConfigError, match="perplexity_of"):
        score_generations(FIXED, lens_frame(TOPS), tokenizer, model, tokenizer, "x", "prefix")


def test_score_generations_averages_over_prefixes(tiny_model):
    model, tokenizer = tiny_model
    metrics = score_generations(
        FIXED, lens_frame(TOPS), tokenizer, model, tokenizer, "local:tiny", "continuation", 2
    )
    assert metrics.columns == list(GEN_METRICS_SCHEMA)
    rows = {(r["feature"], r["factor"]): r for r in metrics.iter_rows(named=True)}
    assert sorted(rows) == [(7, 0.0), (7, 4.0), (9, 4.0)]
    assert rows[7, 0.0]["gen_success_1"] == 1.0 and rows[7, 0.0]["gen_success_5"] == 1.5
    assert rows[7, 4.0]["gen_success_20"] == 2.0 and rows[9, 4.0]["gen_success_1"] == 1.0
    assert rows[7, 4.0]["mean_tokens"] == 2.5 and rows[7, 4.0]["n_prefixes"] == 2
    each = perplexities(model, *text_tokens(FIXED, tokenizer), False, 8)
    assert rows[7, 0.0]["perplexity"] == pytest.approx((each[0] + each[1]) / 2)
    assert rows[7, 4.0]["perplexity"] == pytest.approx(each[2])  # the empty text has none
    assert set(metrics["perplexity_of"]) == {"continuation"}
    assert set(metrics["evaluator"]) == {"local:tiny"}


def test_the_cli_scores_with_the_runs_model_or_a_named_evaluator(tmp_path, tiny_model_dir):
    from saesteer.cli import main

    (tmp_path / "model.json").write_text(
        json.dumps(
            {"source": f"local:{tiny_model_dir}", "path": str(tiny_model_dir), "dtype": "float32"}
        )
    )
    FIXED.write_parquet(tmp_path / "generations.parquet")
    lens_frame(TOPS).with_columns(layer=pl.lit(2)).write_parquet(tmp_path / "lens.parquet")
    runs = {}
    for name, evaluator in [("run", None), ("named", f"local:{tiny_model_dir}/")]:
        settings = {"evaluator": evaluator, "perplexity_of": "text", "batch_size": 4}
        args = ["gen-metrics", "--model", str(tmp_path / "model.json")]
        args += ["--generations", str(tmp_path / "generations.parquet")]
        args += ["--logit-lens", str(tmp_path / "lens.parquet"), "--device", "cpu"]
        args += ["--settings", json.dumps(settings), "--out", str(tmp_path / f"{name}.parquet")]
        assert main(args) == 0
        runs[name] = pl.read_parquet(tmp_path / f"{name}.parquet")
    assert set(runs["run"]["evaluator"]) == {f"local:{tiny_model_dir}"}
    assert set(runs["named"]["evaluator"]) == {f"local:{tiny_model_dir}/"}
    assert runs["run"].drop("evaluator").equals(runs["named"].drop("evaluator"))

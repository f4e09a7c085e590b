"""How well steering worked at each factor: GenSuccess@k and perplexity.

- GenSuccess@k of a feature at a factor: for each prefix, the continuation is tokenized
  (prefix removed, no BOS) and its tokens that are among the feature's top-k logit-lens
  tokens are counted, repeats included; the counts are averaged over the prefixes.
- Perplexity of each steered text under an evaluator LM, exp of the mean next-token
  negative log-likelihood, averaged over the prefixes. The paper scores "the entire
  generated text" (`of: text`: every token after BOS); `of: continuation` scores only the
  continuation's tokens, with the prefix as context.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl
import torch
from tqdm import tqdm

from saesteer.config import GEN_SUCCESS_TOP_K

GEN_SUCCESS_KS = (1, 5, GEN_SUCCESS_TOP_K)

GEN_METRICS_SCHEMA = {
    "layer": pl.Int32,
    "feature": pl.Int64,
    "factor": pl.Float64,
    "gen_success_1": pl.Float64,
    "gen_success_5": pl.Float64,
    "gen_success_20": pl.Float64,
    "perplexity": pl.Float64,  # null when no text had a scored token
    "n_prefixes": pl.Int32,
    "mean_tokens": pl.Float64,  # continuation tokens (in the run's tokenizer) per prefix
    "perplexity_of": pl.Utf8,  # text | continuation
    "evaluator": pl.Utf8,
}

PERPLEXITY_OF = ("text", "continuation")


def gen_success_counts(
    generations: pl.DataFrame, logit_lens: pl.DataFrame, tokenizer, ks: Sequence[int]
) -> pl.DataFrame:
    """Per generation row: its continuation's token count and, for each k, how many of its
    tokens have logit-lens rank < k for the row's feature (columns `hits_<k>`)."""
    missing = set(generations["feature"].unique()) - set(logit_lens["feature"].unique())
    if missing:
        raise ValueError(f"no logit-lens tokens for features {sorted(missing)[:5]}")
    if logit_lens["rank"].max() < max(ks) - 1:
        raise ValueError(f"GenSuccess@{max(ks)} needs {max(ks)} logit-lens tokens per feature")
    ids = tokenizer(generations["continuation"].to_list(), add_special_tokens=False)["input_ids"]
    tokens = (
        generations.select("feature")
        .with_row_index("row")
        .with_columns(token_id=pl.Series(ids, dtype=pl.List(pl.Int64)))
    )
    ranks = logit_lens.select("feature", pl.col("token_id").cast(pl.Int64), "rank")
    hits = (
        tokens.explode("token_id")
        .drop_nulls("token_id")
        .join(ranks, on=["feature", "token_id"], how="left")
        .group_by("row")
        .agg(
            n_continuation_tokens=pl.len(),
            **{f"hits_{k}": (pl.col("rank") < k).sum() for k in ks},
        )
    )
    # Empty continuations have no token rows: they count zero.
    counts = tokens.select("row").join(hits, on="row", how="left", maintain_order="left")
    return counts.drop("row").fill_null(0)


@torch.no_grad()
def perplexities(model, sequences: list[list[int]], scored_from: list[int], batch_size: int):
    """exp(mean NLL) of each sequence's tokens from position `scored_from[i]` on (each token
    predicted from the ones before it); None where no token is scored."""
    device = next(model.parameters()).device
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    result: list[float | None] = [None] * len(sequences)
    for start in tqdm(range(0, len(order), batch_size), desc="perplexity", unit="batch"):
        batch = order[start : start + batch_size]
        width = max(len(sequences[i]) for i in batch)
        ids = torch.zeros(len(batch), width, dtype=torch.long)
        scored = torch.zeros(len(batch), width, dtype=torch.bool)
        for row, i in enumerate(batch):
            ids[row, : len(sequences[i])] = torch.tensor(sequences[i])
            scored[row, max(1, scored_from[i]) : len(sequences[i])] = True
        mask = torch.arange(width) < torch.tensor([len(sequences[i]) for i in batch])[:, None]
        logits = model(ids.to(device), attention_mask=mask.long().to(device)).logits[:, :-1]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        nll = -logprobs.gather(-1, ids[:, 1:, None].to(device))[..., 0].cpu().double()
        counted = scored[:, 1:]
        total = (nll * counted).sum(-1)
        for row, i in enumerate(batch):
            n = int(counted[row].sum())
            result[i] = math.exp(total[row] / n) if n else None
    return result


def text_sequences(generations: pl.DataFrame, tokenizer, of: str) -> tuple[list, list]:
    """BOS + prefix tokens + continuation tokens of each row, and where scoring starts."""
    if of not in PERPLEXITY_OF:
        raise ValueError(f"gen_metrics.perplexity_of: {of!r} (known: {list(PERPLEXITY_OF)})")
    bos = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    prefix = tokenizer(generations["prefix"].to_list(), add_special_tokens=False)["input_ids"]
    cont = tokenizer(generations["continuation"].to_list(), add_special_tokens=False)["input_ids"]
    sequences = [bos + p + c for p, c in zip(prefix, cont, strict=True)]
    starts = [len(bos) if of == "text" else len(bos) + len(p) for p in prefix]
    return sequences, starts


def score_generations(
    generations: pl.DataFrame,
    logit_lens: pl.DataFrame,
    tokenizer,
    evaluator,
    evaluator_tokenizer,
    evaluator_name: str,
    of: str = "text",
    batch_size: int = 32,
) -> pl.DataFrame:
    """GEN_METRICS_SCHEMA rows, one per (feature, factor). Each distinct text is scored once
    (the unsteered baseline is shared by all features)."""
    hits = gen_success_counts(generations, logit_lens, tokenizer, GEN_SUCCESS_KS)
    texts = generations.select("prefix", "continuation").unique(maintain_order=True)
    sequences, starts = text_sequences(texts, evaluator_tokenizer, of)
    texts = texts.with_columns(
        perplexity=pl.Series(
            perplexities(evaluator, sequences, starts, batch_size), dtype=pl.Float64
        )
    )
    rows = pl.concat([generations, hits], how="horizontal").join(
        texts, on=["prefix", "continuation"], how="left", nulls_equal=True
    )
    return (
        rows.group_by("layer", "feature", "factor")
        .agg(
            **{f"gen_success_{k}": pl.col(f"hits_{k}").mean() for k in GEN_SUCCESS_KS},
            perplexity=pl.col("perplexity").mean(),
            n_prefixes=pl.len(),
            mean_tokens=pl.col("n_continuation_tokens").mean(),
        )
        .with_columns(perplexity_of=pl.lit(of), evaluator=pl.lit(evaluator_name))
        .sort("feature", "factor")
        .select(list(GEN_METRICS_SCHEMA))
        .cast(GEN_METRICS_SCHEMA)
    )

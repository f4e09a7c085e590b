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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import torch
from tqdm import tqdm

from saesteer.config import GEN_SUCCESS_TOP_K
from saesteer.errors import ArtifactError, ConfigError
from saesteer.kv_cache import cache_keyword, cache_rows, returned_cache
from saesteer.memory import fitting_rows, row_bytes
from saesteer.models import head_logits, load_model, model_source

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
        raise ArtifactError(
            f"logit_lens.parquet: no logit-lens tokens for features {sorted(missing)[:5]}"
        )
    if logit_lens["rank"].max() < max(ks) - 1:
        raise ConfigError(
            f"logit_lens.top_k: GenSuccess@{max(ks)} needs {max(ks)} logit-lens tokens per feature"
        )
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


# A prefix shared by at least this many texts runs once, its KV cache copied to a batch of
# their continuations; texts with rarer prefixes are batched whole, across prefixes.
SHARED_PREFIX_MIN = 8
# Rows of [rows, vocab] float32 logits made at once when scoring (512 x 262,144 is 0.5 GiB).
LOGIT_ELEMENTS = 2**27


@torch.no_grad()
def perplexities(
    model,
    prefixes: list[list[int]],
    continuations: list[list[int]],
    score_prefix: bool,
    batch_size: int,
) -> list[float | None]:
    """exp(mean NLL) of each text `prefixes[i] + continuations[i]` (each token predicted
    from the ones before it), over every token after the first when `score_prefix`, else
    over the continuation's tokens only; None where no token is scored.

    Texts whose prefix is shared by `SHARED_PREFIX_MIN` or more share one forward of it
    (`_shared_prefix_nll`); the others are right-padded and batched whole, sorted by length
    so that a batch pads little (`_whole_text_nll`)."""
    if prefixes:
        longest = max(len(p) + len(c) for p, c in zip(prefixes, continuations, strict=True))
        batch_size = fitting_rows(model, batch_size, row_bytes(model, longest))
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, prefix in enumerate(prefixes):
        groups.setdefault(tuple(prefix), []).append(i)
    sums: dict[int, tuple[float, int]] = {}
    alone = [i for rows in groups.values() if len(rows) < SHARED_PREFIX_MIN for i in rows]
    shared = {p: rows for p, rows in groups.items() if len(rows) >= SHARED_PREFIX_MIN}
    bar = tqdm(total=len(prefixes), desc="perplexity", unit="text")
    for prefix, rows in shared.items():
        sums.update(
            _shared_prefix_nll(model, list(prefix), rows, continuations, score_prefix, batch_size)
        )
        bar.update(len(rows))
    alone.sort(key=lambda i: len(prefixes[i]) + len(continuations[i]), reverse=True)
    for start in range(0, len(alone), batch_size):
        rows = alone[start : start + batch_size]
        texts = [prefixes[i] + continuations[i] for i in rows]
        first = [1 if score_prefix else max(len(prefixes[i]), 1) for i in rows]
        sums.update(zip(rows, _whole_text_nll(model, texts, first), strict=True))
        bar.update(len(rows))
    bar.close()
    return [
        math.exp(total / count) if count else None
        for total, count in (sums[i] for i in range(len(prefixes)))
    ]


def _token_nll(model, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """NLL [n] of `targets` [n] after final hidden states [n, d], a chunk of rows at a
    time: logsumexp minus the target's logit, never a whole [n, vocab] log-softmax."""
    vocab = model.get_output_embeddings().weight.shape[0]
    chunk = max(1, LOGIT_ELEMENTS // vocab)
    parts = []
    for start in range(0, len(targets), chunk):
        logits = head_logits(model, hidden[start : start + chunk]).float()
        target = logits.gather(-1, targets[start : start + chunk, None])[:, 0]
        parts.append(torch.logsumexp(logits, dim=-1) - target)
    return torch.cat(parts) if parts else hidden.new_zeros(0)


def _summed(nll: torch.Tensor, row: torch.Tensor, rows: int) -> list[tuple[float, int]]:
    """(summed NLL, token count) per row of scored tokens that belong to rows `row`."""
    # float32 sums of at most a text's tokens (relative error ~1e-7 each), not float64,
    # which mps lacks; the totals become Python floats below
    totals = torch.zeros(rows, device=nll.device).index_add_(0, row, nll.float())
    counts = torch.bincount(row, minlength=rows)
    return list(zip(totals.tolist(), counts.tolist(), strict=True))


def _whole_text_nll(model, texts: list[list[int]], first: list[int]) -> list[tuple[float, int]]:
    """(summed NLL, count) of each text's tokens from position `first[i]` on, the texts
    right-padded into one batch (a causal model's real tokens never see the padding)."""
    device = next(model.parameters()).device
    width = max(len(t) for t in texts)
    ids = torch.zeros(len(texts), width, dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    scored = torch.zeros_like(ids, dtype=torch.bool)
    for row, (tokens, start) in enumerate(zip(texts, first, strict=True)):
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        mask[row, : len(tokens)] = 1
        scored[row, start : len(tokens)] = True
    if not scored[:, 1:].any():
        return [(0.0, 0)] * len(texts)
    hidden = model.base_model(ids[:, :-1], attention_mask=mask[:, :-1]).last_hidden_state
    where = scored[:, 1:]  # hidden state j predicts token j + 1
    nll = _token_nll(model, hidden[where], ids[:, 1:][where])
    return _summed(nll, where.nonzero()[:, 0], len(texts))


def _shared_prefix_nll(
    model, prefix, rows, continuations, score_prefix, batch_size
) -> dict[int, tuple[float, int]]:
    """(summed NLL, count) of rows `rows`, whose texts all start with `prefix`: the prefix
    runs once, and its last position's logits score each continuation's first token."""
    device = next(model.parameters()).device
    ids = torch.tensor([prefix], device=device)
    output = model.base_model(ids, use_cache=True)
    hidden = output.last_hidden_state[0]
    prefix_nll = _token_nll(model, hidden[:-1], ids[0, 1:]).sum().item()
    cache, first = returned_cache(output), hidden[-1]
    keyword = cache_keyword(model.base_model)
    sums = {}
    rows = sorted(rows, key=lambda i: len(continuations[i]))
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        nll = _continuation_nll(
            model, keyword, cache, len(prefix), first, [continuations[i] for i in batch]
        )
        for i, (total, count) in zip(batch, nll, strict=True):
            if score_prefix:
                total, count = total + prefix_nll, count + len(prefix) - 1
            sums[i] = (total, count)
    return sums


def _continuation_nll(model, keyword, cache, prefix_len, first, continuations):
    """(summed NLL, token count) of each continuation after a cached prefix whose last
    final hidden state is `first`."""
    device = first.device
    width = max(max(len(c) for c in continuations), 1)
    ids = torch.zeros(len(continuations), width, dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for row, tokens in enumerate(continuations):
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        mask[row, : len(tokens)] = 1
    # Position j of a continuation is predicted by the hidden state before it: the
    # prefix's last one for j = 0, the continuation's own j - 1 after.
    hidden = first.expand(len(continuations), 1, -1)
    if width > 1:
        rows = cache_rows(cache, len(continuations))
        prefix_mask = torch.ones(len(continuations), prefix_len, dtype=torch.long, device=device)
        after = model.base_model(
            ids[:, :-1],
            attention_mask=torch.cat([prefix_mask, mask[:, :-1]], dim=1),
            position_ids=(prefix_len + torch.arange(width - 1, device=device)).expand(
                len(continuations), -1
            ),
            use_cache=True,
            **{keyword: rows},
        ).last_hidden_state
        hidden = torch.cat([hidden, after], dim=1)
    where = mask.bool()
    nll = _token_nll(model, hidden[where], ids[where])
    return _summed(nll, where.nonzero()[:, 0], len(continuations))


def text_tokens(generations: pl.DataFrame, tokenizer) -> tuple[list, list]:
    """BOS + prefix tokens, and continuation tokens, of each row."""
    bos = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    prefix = tokenizer(generations["prefix"].to_list(), add_special_tokens=False)["input_ids"]
    cont = tokenizer(generations["continuation"].to_list(), add_special_tokens=False)["input_ids"]
    return [bos + p for p in prefix], cont


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
    if of not in PERPLEXITY_OF:
        raise ConfigError(f"gen_metrics.perplexity_of: {of!r} (known: {list(PERPLEXITY_OF)})")
    prefixes, continuations = text_tokens(texts, evaluator_tokenizer)
    values = perplexities(evaluator, prefixes, continuations, of == "text", batch_size)
    texts = texts.with_columns(perplexity=pl.Series(values, dtype=pl.Float64))
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


@dataclass(frozen=True)
class Evaluator:
    """The perplexity model (the run's own, or `gen_metrics.evaluator`) and the run's
    tokenizer, in whose tokens GenSuccess counts."""

    name: str  # the evaluator's model source
    model: Any
    model_tokenizer: Any
    tokenizer: Any


def load_evaluator(
    run_model: dict, spec: str | None, resources: str | Path, device: str = "auto"
) -> Evaluator:
    """The evaluator of `spec` (a model source; None: the run's model, `run_model` being
    its model.json), in the run model's dtype."""
    name = spec or run_model["source"]
    path = run_model["path"]
    if name != run_model["source"]:
        path = str(model_source(name).resolve(Path(resources)))
    model, model_tokenizer = load_model(path, run_model["dtype"], device)
    if path == run_model["path"]:
        return Evaluator(name, model, model_tokenizer, model_tokenizer)
    from transformers import AutoTokenizer

    return Evaluator(name, model, model_tokenizer, AutoTokenizer.from_pretrained(run_model["path"]))

"""The output score: does amplifying a feature push its logit-lens tokens up?

    output_score = (1 - min_{t in T_k(i)} rank(t) / |V|) * max_{t in T_k(i)} p[t]

with p the next-token distribution after the prompt, steered at factor s, and rank(t) the
number of tokens more likely than t (0 = most likely; ties share the best position).

Two ways to get p for many features, registered in `SCORERS`:
- `fast`: the steering changes only the last position, and only from block L on. So the
  prompt's prefix runs once (its KV cache is reused), block L's output at the last
  position is computed once, and each feature costs one token through blocks L+1.. in a
  batch of features.
- `reference`: one full forward of the prompt per feature with the public code's
  intervention, as the public code runs it. Kept to test and benchmark the fast path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import polars as pl
import torch
from tqdm import tqdm

from saesteer.errors import ConfigError, DataFileError
from saesteer.hooks import block_output, edit_block_output, start_after_block
from saesteer.kv_cache import cache_keyword, cache_rows, returned_cache
from saesteer.memory import fitting_rows, row_bytes
from saesteer.prompts import PREFIXES, encode_prompt
from saesteer.steering import add_steering, latent_max, steer_reference, steering_directions

log = logging.getLogger(__name__)

OUTPUT_SCORES_SCHEMA = {
    "layer": pl.Int32,
    "feature": pl.Int64,
    "output_score": pl.Float64,
    "min_rank": pl.Int64,
    "max_prob": pl.Float64,
    "steered_score": pl.Float64,
    "unsteered_score": pl.Float64,
    "variant": pl.Utf8,
    "prompt": pl.Utf8,
    "factor": pl.Float64,
    "top_k": pl.Int32,
    "robustness_mean": pl.Float64,
    "n_robustness_prompts": pl.Int32,
}

# Every prompt scored: id 0 is the main prompt, then the robustness prompts.
OUTPUT_SCORES_BY_PROMPT_SCHEMA = {
    "layer": pl.Int32,
    "feature": pl.Int64,
    "prompt_id": pl.Int32,
    "prompt": pl.Utf8,
    "output_score": pl.Float64,
    "min_rank": pl.Int64,
    "max_prob": pl.Float64,
    "steered_score": pl.Float64,
    "unsteered_score": pl.Float64,
}

PROMPT_LISTS = {"prefixes": PREFIXES}


@dataclass(frozen=True)
class OutputScoreSettings:
    SECTIONS: ClassVar = ("output_score",)
    prompt: str
    factor: float
    top_k: int
    # Extra neutral prompts for the paper's robustness check, or a named list ("prefixes").
    robustness_prompts: Sequence[str] | str
    # The paper's S_out = P(steered) - P(unsteered); the code (default) keeps the first term.
    subtract_unsteered: bool
    method: str
    batch_size: int

    def prompts(self) -> list[str]:
        extra = self.robustness_prompts
        if isinstance(extra, str):
            if extra not in PROMPT_LISTS:
                raise ConfigError(
                    f"output_score.robustness_prompts: unknown list {extra!r} "
                    f"(known: {sorted(PROMPT_LISTS)})"
                )
            extra = PROMPT_LISTS[extra]
        return [self.prompt, *extra]


def score_from_probs(probs: torch.Tensor, token_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """min_rank, max_prob and their score for each row of `probs` [n, V] and `token_ids` [n, k].
    Overwrites `probs`.

    The best-ranked token is the most probable one, so min_rank counts the tokens more
    likely than max_prob: one comparison pass, no sort. The comparison is written into
    `probs` as 0.0/1.0 and summed as floats (exact below 2**24): on a CPU a bool tensor's
    sum is ten times slower, as slow as the LM head at late layers."""
    max_prob = probs.gather(1, token_ids).max(dim=-1).values
    min_rank = probs.gt_(max_prob[:, None]).sum(dim=-1).long().cpu()
    # float64 on the host only (mps has none): n values, nothing to gain on the device
    max_prob = max_prob.cpu().double()
    score = (1 - min_rank.double() / probs.shape[-1]) * max_prob
    return {"min_rank": min_rank, "max_prob": max_prob, "score": score}


def score_from_one_distribution(probs: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
    """`score_from_probs`'s score of every row of `token_ids` [n, k] under one distribution
    `probs` [V]: sorted once, each rank is a binary search instead of a pass over V."""
    max_prob = probs[token_ids].max(dim=-1).values
    ascending = probs.sort().values
    min_rank = (len(probs) - torch.searchsorted(ascending, max_prob, right=True)).cpu()
    return (1 - min_rank.double() / len(probs)) * max_prob.cpu().double()


def prompt_pass(model, layer: int, ids: torch.Tensor) -> tuple[object, torch.Tensor]:
    """(KV cache of all but the last token of `ids` [1, n] or None, block `layer`'s output
    at the last token [1, d]) from one forward of the decoder stack: the weights are read
    once, which at late layers costs as much as the steered rows do."""
    window = getattr(model.config.get_text_config(), "sliding_window", None)
    if ids.shape[1] == 1 or (window and ids.shape[1] >= window):
        # no prefix, or a sliding-window cache that cannot be cropped back: two passes
        cache = None
        if ids.shape[1] > 1:
            cache = returned_cache(model.base_model(ids[:, :-1], use_cache=True))
        last_cache = None if cache is None else cache_rows(cache, 1)
        forward = {cache_keyword(model): last_cache}
        return cache, block_output(model, layer, ids[:, -1:], **forward)[:, -1]
    seen = {}

    def read(hidden):
        seen["last"] = hidden[:, -1]

    with edit_block_output(model, layer, read):
        cache = returned_cache(model.base_model(ids, use_cache=True))
    cache.crop(-1)  # the steered forward brings the last token back, steered
    return cache, seen["last"]


@torch.no_grad()
def score_prompt_fast(
    model, sae, layer, prompt_ids, features, token_ids, factor, batch_size
) -> dict[str, torch.Tensor]:
    device = next(model.parameters()).device
    batch_size = fitting_rows(model, batch_size, row_bytes(model, len(prompt_ids)))
    ids = torch.tensor([prompt_ids], device=device)
    prefix_cache, last = prompt_pass(model, layer, ids)
    keyword = cache_keyword(model)
    a_max = latent_max(sae, last)
    directions = steering_directions(sae, features)
    token_ids = token_ids.to(device)
    parts, baseline = [], None
    for start in range(0, len(features), batch_size):
        rows = directions[start : start + batch_size]
        if baseline is None:  # an unsteered row rides along in the first chunk
            rows = torch.cat([torch.zeros(1, rows.shape[1], device=device), rows])
        steered = add_steering(last, a_max, rows, torch.full((1,), float(factor)))
        n = steered.shape[0]
        cache = None if prefix_cache is None else cache_rows(prefix_cache, n)
        with start_after_block(model, layer, steered[:, None]):
            logits = model(
                ids[:, -1:].expand(n, 1), use_cache=cache is not None, **{keyword: cache}
            ).logits[:, -1]
        probs = torch.softmax(logits.float(), dim=-1)
        if baseline is None:
            baseline, probs = probs[0].clone(), probs[1:]
        parts.append(score_from_probs(probs, token_ids[start : start + len(probs)]))
    result = {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
    return {**result, "unsteered": score_from_one_distribution(baseline, token_ids)}


def _rank_and_prob_one_by_one(probs: torch.Tensor, tokens: list[int]) -> tuple[int, float]:
    """min over tokens of rank(t) = #{v: p[v] > p[t]}, and max p[t], token by token."""
    return min(int((probs > probs[t]).sum()) for t in tokens), max(float(probs[t]) for t in tokens)


@torch.no_grad()
def score_prompt_reference(
    model, sae, layer, prompt_ids, features, token_ids, factor, batch_size
) -> dict[str, torch.Tensor]:
    """One full forward per feature, as the public code runs it; ranks read off one by one."""
    device = next(model.parameters()).device
    ids = torch.tensor([prompt_ids], device=device)
    vocab = model.get_output_embeddings().weight.shape[0]
    baseline = torch.softmax(model(ids).logits[0, -1].float(), dim=-1)
    columns = {"min_rank": [], "max_prob": [], "score": [], "unsteered": []}
    for feature, tokens in zip(features, token_ids.tolist(), strict=True):
        with steer_reference(model, sae, layer, feature, factor):
            probs = torch.softmax(model(ids).logits[0, -1].float(), dim=-1)
        min_rank, max_prob = _rank_and_prob_one_by_one(probs, tokens)
        base_rank, base_prob = _rank_and_prob_one_by_one(baseline, tokens)
        columns["min_rank"].append(min_rank)
        columns["max_prob"].append(max_prob)
        columns["score"].append((1 - min_rank / vocab) * max_prob)
        columns["unsteered"].append((1 - base_rank / vocab) * base_prob)
    return {
        key: torch.tensor(values, dtype=torch.long if key == "min_rank" else torch.float64)
        for key, values in columns.items()
    }


SCORERS = {"fast": score_prompt_fast, "reference": score_prompt_reference}


def robustness_correlation(scores: pl.DataFrame) -> tuple[float, float]:
    """Pearson and Spearman correlation of the main prompt's output score with the mean
    over the robustness prompts (the paper's robustness check)."""
    pair = [pl.col("output_score"), pl.col("robustness_mean")]
    return scores.select(
        pl.corr(*pair).alias("pearson"), pl.corr(*pair, method="spearman").alias("spearman")
    ).row(0)


def score_output(
    model,
    tokenizer,
    sae,
    layer: int,
    features: Sequence[int],
    token_ids: torch.Tensor,
    settings: OutputScoreSettings,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Output scores of `features` (with their logit-lens top-k `token_ids` [n, k]).

    Returns (one row per feature on the main prompt, one row per feature and prompt)."""
    if settings.method not in SCORERS:
        raise ConfigError(f"output_score.method: {settings.method!r} (known: {sorted(SCORERS)})")
    if not len(features):
        raise DataFileError(f"layer {layer}: no features to score")
    scorer, token_ids = SCORERS[settings.method], token_ids[:, : settings.top_k]
    prompts, rows = settings.prompts(), []
    for prompt_id, prompt in enumerate(tqdm(prompts, desc=f"output score L{layer}", unit="prompt")):
        prompt_ids = encode_prompt(tokenizer, prompt)
        steered = scorer(
            model, sae, layer, prompt_ids, features, token_ids, settings.factor, settings.batch_size
        )
        unsteered = steered["unsteered"]
        score = steered["score"] - unsteered if settings.subtract_unsteered else steered["score"]
        rows.append(
            pl.DataFrame(
                {
                    "layer": layer,
                    "feature": list(features),
                    "prompt_id": prompt_id,
                    "prompt": prompt,
                    "output_score": score.tolist(),
                    "min_rank": steered["min_rank"].tolist(),
                    "max_prob": steered["max_prob"].tolist(),
                    "steered_score": steered["score"].tolist(),
                    "unsteered_score": unsteered.tolist(),
                }
            )
        )
    by_prompt = pl.concat(rows).cast(OUTPUT_SCORES_BY_PROMPT_SCHEMA)
    return _main_prompt_scores(by_prompt, settings), by_prompt


def _main_prompt_scores(by_prompt: pl.DataFrame, settings: OutputScoreSettings) -> pl.DataFrame:
    robustness = (
        by_prompt.filter(pl.col("prompt_id") > 0)
        .group_by("feature")
        .agg(
            robustness_mean=pl.col("output_score").mean(),
            n_robustness_prompts=pl.len(),
        )
    )
    main = by_prompt.filter(pl.col("prompt_id") == 0).drop("prompt_id")
    return (
        main.join(robustness, on="feature", how="left", maintain_order="left")
        .with_columns(
            variant=pl.lit("steered_minus_unsteered" if settings.subtract_unsteered else "steered"),
            factor=pl.lit(float(settings.factor)),
            top_k=pl.lit(settings.top_k),
            n_robustness_prompts=pl.col("n_robustness_prompts").fill_null(0),
        )
        .select(list(OUTPUT_SCORES_SCHEMA))
        .cast(OUTPUT_SCORES_SCHEMA)
    )

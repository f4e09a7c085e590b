"""Steered generation over the factor grid: many (prefix, feature, factor) rows per
forward, left-padded, each row with its own steering vector, its own random stream and its
own stop.

A row's random stream is a generator seeded from the row's identity (`row_seed`), and
sampling is Gumbel-max over that stream, so a row's text does not depend on which rows
share its batch: a rerun, another batch size or another feature list gives the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
import torch
from tqdm import tqdm

from saesteer.errors import ConfigError
from saesteer.generations_table import generations_frame
from saesteer.kv_cache import cache_keyword, cache_rows, cache_with_room, returned_cache
from saesteer.memory import fitting_rows, row_bytes
from saesteer.prompts import encode_prompt
from saesteer.sampling import SamplingSettings
from saesteer.seeds import row_seed
from saesteer.steering import SteeringTarget, steer, steering_directions
from saesteer.tokenizer_files import token_texts

# The method's grid; 0.0 is the unsteered baseline.
FACTOR_GRID = (0.0, 0.2, 0.4, 0.8, 1.2, 1.6, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 20.0)


def stop_tokens(tokenizer, stop: str | None, vocab_size: int) -> torch.Tensor:
    """Bool [vocab]: tokens whose text holds `stop` (unless None), and the end-of-sequence
    tokens.

    Checked per token, so a stop string split across two tokens is not caught. Rows of a
    model's vocabulary beyond the tokenizer's (padding) never stop."""
    texts = token_texts(tokenizer, range(min(vocab_size, len(tokenizer))))
    stops = torch.zeros(vocab_size, dtype=torch.bool)
    stops[: len(texts)] = torch.tensor([bool(stop) and stop in text for text in texts])
    eos = tokenizer.eos_token_id
    for token in [eos] if isinstance(eos, int) else (eos or []):
        stops[token] = True
    return stops


@dataclass(frozen=True)
class SteeredRows:
    """Rows to sample: each one's prompt ids, steering direction [n, d], factor [n] and
    random stream (its seed)."""

    prompts: list[list[int]]
    directions: torch.Tensor
    factors: torch.Tensor
    seeds: list[int]

    def __len__(self) -> int:
        return len(self.prompts)

    def take(self, index: Sequence[int]) -> SteeredRows:
        index = list(index)
        return SteeredRows(
            [self.prompts[i] for i in index],
            self.directions[index],
            self.factors[index],
            [self.seeds[i] for i in index],
        )


@torch.no_grad()
def sample_steered(
    target: SteeringTarget, rows: SteeredRows, stops: torch.Tensor, settings: SamplingSettings
) -> list[list[int]]:
    """The continuation (token ids, the stop token included) of each row: prompt `r`
    steered along `directions[r]` with factor `factors[r]`, sampled from stream `seeds[r]`.

    Steering changes a prompt only from its last token on, so every distinct prompt's
    other tokens run once and their KV cache is shared by all rows that use it."""
    model, device = target.model, target.device
    unique: dict[tuple[int, ...], int] = {}
    prompt_index = torch.tensor([unique.setdefault(tuple(p), len(unique)) for p in rows.prompts])
    prefix = _prefix_cache(model, [list(p) for p in unique], pad_token_id(target.tokenizer), device)
    out: list[list[int]] = []
    positions = max((len(p) for p in unique), default=1) + settings.max_new_tokens
    batch = fitting_rows(model, settings.batch_size, row_bytes(model, positions))
    # Batches of equal size: 260 rows at 64 make 5 of 52, not 4 of 64 and a last one of 4
    # whose forwards (as many as the others') use a few rows of the matmuls.
    batch = -(-len(rows) // max(1, -(-len(rows) // batch))) if len(rows) else batch
    bar = tqdm(total=len(rows), desc=f"sampling layer {target.layer}", unit="row")
    for start in range(0, len(rows), batch):
        part = range(start, min(start + batch, len(rows)))
        out += _sample_batch(
            target,
            prefix,
            prompt_index[part].to(device),
            rows.take(part),
            stops.to(device),
            settings,
        )
        bar.update(len(out) - bar.n)
    bar.close()
    return out


@dataclass
class _PrefixCache:
    """Distinct prompts, left-padded: the KV cache of all but their last token (None when
    every prompt is one token), the mask of the whole prompt and its last token."""

    cache: object
    last: torch.Tensor  # [prompts] last token
    mask: torch.Tensor  # [prompts, width]
    last_position: torch.Tensor  # [prompts]

    def for_rows(self, index: torch.Tensor):
        """Cache, input ids, mask and positions of the first forward of rows `index`."""
        cache = None if self.cache is None else cache_rows(self.cache, index)
        return cache, self.last[index, None], self.mask[index], self.last_position[index, None]


def _left_pad(prompts: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, ...]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.as_tensor(prompt, device=device)
        mask[row, width - len(prompt) :] = 1
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def _prefix_cache(model, prompts: list[list[int]], pad_id: int, device) -> _PrefixCache:
    ids, mask, positions = _left_pad(prompts, pad_id, device)
    cache = None
    if ids.shape[1] > 1:  # the decoder stack only: the prefix's logits are never read
        cache = returned_cache(
            model.base_model(
                ids[:, :-1],
                attention_mask=mask[:, :-1],
                position_ids=positions[:, :-1],
                use_cache=True,
            )
        )
    return _PrefixCache(cache, ids[:, -1], mask, positions[:, -1])


def gumbel(uniform: torch.Tensor) -> torch.Tensor:
    """Gumbel noise from uniforms, in float32 (mps has no float64, and a GPU runs it
    slowly). float32 suffices: its uniforms (steps of 2^-24) cap the noise at about 16.6,
    which float64 noise would pass with probability 6e-8 per candidate and step; and that
    candidate must then also beat every other to change the sampled token."""
    return -torch.log(-torch.log(uniform.clamp(min=torch.finfo(torch.float32).tiny)))


def top_k_candidates(
    logits: torch.Tensor, k: int | None
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Each row's candidate tokens in ascending id order, their logits and their number:
    the tokens at or above the row's k-th largest logit (ties with the k-th are kept, as
    transformers' top-k warper keeps them), padded with -inf to the widest row; None keeps
    the vocabulary."""
    rows, vocab = logits.shape
    if k is None or k >= vocab:
        return torch.arange(vocab, device=logits.device).expand_as(logits), logits, [vocab] * rows
    values, ids = logits.topk(k + 1, dim=-1)
    if not bool((values[:, k] == values[:, k - 1]).any()):  # no ties at the k-th
        ids, order = ids[:, :k].sort(-1)
        return ids, values.gather(-1, order), [k] * rows
    mask = logits >= values[:, k - 1 : k]
    counts = mask.sum(-1)
    # Ties at the k-th: the mask is the exact kept set, its ids first in ascending order.
    width = int(counts.max())
    position = torch.arange(vocab, device=logits.device)
    ids = torch.where(mask, position, vocab).sort(-1).values[:, :width]
    padding = ids == vocab
    ids = ids.masked_fill(padding, 0)
    return ids, logits.gather(-1, ids).masked_fill(padding, float("-inf")), counts.tolist()


def sample_tokens(
    logits: torch.Tensor, generators: list[torch.Generator], settings: SamplingSettings
) -> torch.Tensor:
    """One token per row by Gumbel-max over its top-k candidates (`top_k_candidates`) at
    the settings' temperature (applied after the selection, which it does not change).

    Row r draws one uniform per candidate from `generators[r]`, in token-id order, so its
    token depends on its own logits and stream only. Drawing for the candidates alone, not
    the whole vocabulary, is what keeps sampling cheap when the vocabulary is large."""
    ids, values, widths = top_k_candidates(logits, settings.top_k)
    values = values / settings.temperature
    uniform = torch.full_like(values, 0.5)  # padding: finite noise beside its -inf logit
    for row, (generator, width) in enumerate(zip(generators, widths, strict=True)):
        uniform[row, :width] = torch.rand(width, generator=generator, device=values.device)
    best = (values + gumbel(uniform)).argmax(-1, keepdim=True)
    return ids.gather(-1, best).squeeze(-1)


def _sample_batch(
    target: SteeringTarget,
    prefix: _PrefixCache,
    prompt_index: torch.Tensor,
    rows: SteeredRows,
    stops: torch.Tensor,
    settings: SamplingSettings,
) -> list[list[int]]:
    """Rows that have stopped leave the batch (and the cache), so the forwards shrink."""
    model, device = target.model, prompt_index.device
    cache, ids, mask, positions = prefix.for_rows(prompt_index)
    if cache is not None:
        cache = cache_with_room(cache, settings.max_new_tokens)
    directions, factors, seeds = rows.directions.to(device), rows.factors.to(device), rows.seeds
    generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    keyword = cache_keyword(model)
    tokens: list[list[int]] = [[] for _ in seeds]
    alive = torch.arange(len(seeds), device=device)  # batch position -> row
    for _ in range(settings.max_new_tokens):
        with steer(model, target.sae, target.layer, directions, factors):
            output = model(
                ids, attention_mask=mask, position_ids=positions, use_cache=True, **{keyword: cache}
            )
        cache = returned_cache(output)
        new = sample_tokens(output.logits[:, -1].float(), generators, settings)
        for row, token in zip(alive.tolist(), new.tolist(), strict=True):
            tokens[row].append(token)
        going = ~stops[new]
        if not going.all():
            if not going.any():
                break
            keep = going.nonzero().flatten()
            cache.reorder_cache(keep)
            alive, new, mask, positions = alive[keep], new[keep], mask[keep], positions[keep]
            directions, factors = directions[keep], factors[keep]
            generators = [generators[i] for i in keep.tolist()]
        ids = new[:, None]
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        positions = positions[:, -1:] + 1
    return tokens


def pad_token_id(tokenizer) -> int:
    """The id that pads batches: the tokenizer's pad, else its end of sequence, else 0."""
    return next(i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0) if i is not None)


def sample_answers(
    target: SteeringTarget,
    rows: SteeredRows,
    settings: SamplingSettings,
    end_ids: Sequence[int] = (),
    order: Sequence[int] | None = None,
    chunk_rows: int | None = None,
) -> list[list[int]]:
    """The sampled token ids of each row: the one driver of steered sampling, for the factor
    grid and the concept answers alike.

    A row stops at a token holding `settings.stop`, at an end-of-sequence token or one of
    `end_ids`, or after max_new_tokens. Rows run in `order` (default: as given), `chunk_rows`
    at a time (default: all), each chunk batched by `sample_steered`; a row's own random
    stream keeps its text the same under any order or chunking."""
    vocab = target.model.get_output_embeddings().weight.shape[0]
    stops = stop_tokens(target.tokenizer, settings.stop, vocab)
    stops[[i for i in end_ids if i < vocab]] = True
    order = list(range(len(rows))) if order is None else list(order)
    chunk_rows = chunk_rows or max(1, len(order))
    answers: list[list[int]] = [[] for _ in range(len(rows))]
    for start in range(0, len(order), chunk_rows):
        part = order[start : start + chunk_rows]
        sampled = sample_steered(target, rows.take(part), stops, settings)
        for i, answer in zip(part, sampled, strict=True):
            answers[i] = answer
    return answers


def generate_grid(
    target: SteeringTarget,
    features: list[int],
    factors: list[float],
    prefixes: list[str],
    settings: SamplingSettings,
) -> pl.DataFrame:
    """One sampled continuation per (feature, factor, prefix), in a GENERATIONS_SCHEMA frame.

    Factor 0 is no steering at all, so its continuations are sampled once per prefix and
    shared by every feature (the common unsteered baseline)."""
    if not features:
        raise ConfigError(f"layer {target.layer}: no features to steer")
    steered = [
        (f, float(c), p) for f in features for c in factors if c != 0 for p in range(len(prefixes))
    ]
    baseline = [(None, 0.0, p) for p in range(len(prefixes))] if 0.0 in map(float, factors) else []
    jobs = baseline + steered
    index = {f: i for i, f in enumerate(features)}
    directions = steering_directions(target.sae, features)
    prompt_ids = [encode_prompt(target.tokenizer, prefix) for prefix in prefixes]
    seeds = [row_seed(settings.seed, f, c, p) for f, c, p in jobs]
    rows = SteeredRows(
        [prompt_ids[p] for _, _, p in jobs],
        directions[[0 if f is None else index[f] for f, _, _ in jobs]],
        torch.tensor([c for _, c, _ in jobs]),
        seeds,
    )
    continuations = sample_answers(target, rows, settings)
    texts = [
        continuation_text(target.tokenizer, prompt_ids[p], ids)
        for (_, _, p), ids in zip(jobs, continuations, strict=True)
    ]
    frame = pl.DataFrame(
        {
            "feature": [f for f, _, _ in jobs],
            "factor": [c for _, c, _ in jobs],
            "prefix_id": [p for _, _, p in jobs],
            "continuation": texts,
            "n_tokens": [len(ids) for ids in continuations],
            "seed": seeds,
        },
        schema_overrides={"feature": pl.Int64, "seed": pl.Int64},
    )
    shared = frame.filter(pl.col("feature").is_null()).drop("feature")
    frame = pl.concat(
        [
            pl.DataFrame({"feature": features}, schema={"feature": pl.Int64}).join(
                shared, how="cross"
            ),
            frame.filter(pl.col("feature").is_not_null()),
        ]
    )
    return generations_frame(target.layer, frame, prefixes, "sampled")


def continuation_text(tokenizer, prompt_ids: list[int], ids: list[int]) -> str:
    """The text the continuation adds to the prompt: decoded together with the prompt, as a
    tokenizer may drop a leading space when a piece is decoded on its own."""
    before = tokenizer.decode(prompt_ids, skip_special_tokens=True)
    after = tokenizer.decode(prompt_ids + ids, skip_special_tokens=True)
    return (
        after[len(before) :]
        if after.startswith(before)
        else tokenizer.decode(ids, skip_special_tokens=True)
    )

"""Steered sampling: many (prefix, feature, factor) rows per forward, left-padded, each row
with its own steering vector, its own random stream and its own stop.

A row's random stream is a generator seeded from the row's identity (`row_seed`), and
sampling is Gumbel-max over that stream, so a row's text does not depend on which rows
share its batch: a rerun, another batch size or another feature list gives the same text.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields

import torch
from tqdm import tqdm

from saesteer.models import cache_keyword, returned_cache
from saesteer.steering import steer


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 0.7
    max_new_tokens: int = 20
    stop: str = "."  # a row stops once its text gains this
    batch_size: int = 128  # rows per forward

    @classmethod
    def from_config(cls, section: dict) -> SamplingSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in section.items() if k in known})


def row_seed(seed: int, *key) -> int:
    """A 63-bit seed for one row, from the job's seed and the row's identity."""
    digest = hashlib.sha256(repr((seed, *key)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def stop_tokens(tokenizer, stop: str, vocab_size: int) -> torch.Tensor:
    """Bool [vocab]: tokens whose text holds `stop`, and the end-of-sequence tokens.

    Checked per token, so a stop string split across two tokens is not caught."""
    texts = tokenizer.batch_decode([[i] for i in range(vocab_size)])
    stops = torch.tensor([stop in text for text in texts])
    eos = tokenizer.eos_token_id
    for token in [eos] if isinstance(eos, int) else (eos or []):
        stops[token] = True
    return stops


@torch.no_grad()
def sample_steered(
    model,
    sae,
    layer: int,
    prompts: list[list[int]],
    directions: torch.Tensor,
    factors: torch.Tensor,
    seeds: list[int],
    stops: torch.Tensor,
    pad_id: int,
    settings: SamplingSettings,
) -> list[list[int]]:
    """The continuation (token ids, the stop token included) of each row: prompt `r`
    steered along `directions[r]` with factor `factors[r]`, sampled from stream `seeds[r]`."""
    out: list[list[int]] = []
    for start in tqdm(range(0, len(prompts), settings.batch_size), desc=f"sampling layer {layer}"):
        rows = slice(start, start + settings.batch_size)
        out += _sample_batch(
            model,
            sae,
            layer,
            prompts[rows],
            directions[rows],
            factors[rows],
            seeds[rows],
            stops,
            pad_id,
            settings,
        )
    return out


def _left_pad(prompts: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, ...]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.as_tensor(prompt, device=device)
        mask[row, width - len(prompt) :] = 1
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def _gumbel_noise(generators: list[torch.Generator], vocab: int, device) -> torch.Tensor:
    uniform = torch.stack(
        [torch.rand(vocab, generator=g, device=device, dtype=torch.float64) for g in generators]
    )
    return -torch.log(-torch.log(uniform.clamp(min=1e-300)))


def _sample_batch(
    model, sae, layer, prompts, directions, factors, seeds, stops, pad_id, settings
) -> list[list[int]]:
    device = next(model.parameters()).device
    ids, mask, positions = _left_pad(prompts, pad_id, device)
    generators = [torch.Generator(device=device).manual_seed(s) for s in seeds]
    stops = stops.to(device)
    keyword, cache = cache_keyword(model), None
    tokens = torch.full((len(prompts), settings.max_new_tokens), pad_id, device=device)
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    lengths = torch.zeros(len(prompts), dtype=torch.long, device=device)
    with steer(model, sae, layer, directions, factors):
        for step in range(settings.max_new_tokens):
            output = model(
                ids, attention_mask=mask, position_ids=positions, use_cache=True, **{keyword: cache}
            )
            cache = returned_cache(output)
            logits = output.logits[:, -1].double() / settings.temperature
            noise = _gumbel_noise(generators, logits.shape[-1], device)
            new = (logits + noise[:, : logits.shape[-1]]).argmax(-1)
            new = torch.where(done, torch.full_like(new, pad_id), new)
            tokens[:, step] = new
            lengths += (~done).long()
            done |= stops[new]
            if done.all():
                break
            ids = new[:, None]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            positions = positions[:, -1:] + 1
    return [row[:n].tolist() for row, n in zip(tokens, lengths.tolist(), strict=True)]

"""DiffMean, the supervised baseline of concept steering: the difference between the mean
residual stream (block L's output) over a concept's texts and over other concepts' texts.

A concept's texts are its feature's top activating examples; its negatives are the other
concepts' examples, each concept weighted equally. The direction is rescaled to the norm of
the feature's own SAE direction, so DiffMean and the SAE steer with the same hook and the
same magnitude and differ only in direction."""

from __future__ import annotations

import logging

import polars as pl
import torch
from tqdm import tqdm

from saesteer.errors import ActivationsError
from saesteer.generation import pad_token_id
from saesteer.hooks import block_output, non_sink_positions

log = logging.getLogger(__name__)


def example_token_ids(activations: pl.DataFrame, tokenizer) -> dict[int, list[list[int]]]:
    """Each feature's examples as token ids: the source's ids, else its token strings
    joined (Neuronpedia's `▁` read as a space) and re-tokenized."""
    out: dict[int, list[list[int]]] = {}
    for feature, tokens, ids in activations.select("feature", "tokens", "token_ids").iter_rows():
        if ids is None:
            text = "".join(tokens).replace("▁", " ")
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        out.setdefault(feature, []).append(list(ids))
    return out


@torch.no_grad()
def mean_activations(
    model, tokenizer, layer: int, texts: list[list[int]], batch_size: int = 32
) -> torch.Tensor:
    """Mean of block `layer`'s output over the tokens of `texts`, BOS-led as SAEs are
    trained, without special tokens and attention sinks."""
    device = next(model.parameters()).device
    bos = tokenizer.bos_token_id
    pad = pad_token_id(tokenizer)
    special = list(tokenizer.all_special_ids)
    total, count = None, 0
    # A source's own leading BOS (Neuronpedia's Gemma examples have one) is not doubled.
    texts = [t[1:] if bos is not None and t[:1] == [bos] else t for t in texts]
    for start in range(0, len(texts), batch_size):
        batch = [([bos] if bos is not None else []) + t for t in texts[start : start + batch_size]]
        width = max(len(t) for t in batch)
        # Right padding: a causal model's real tokens never see the pads after them.
        ids = torch.full((len(batch), width), pad, dtype=torch.long, device=device)
        real = torch.zeros_like(ids, dtype=torch.bool)
        for row, t in enumerate(batch):
            ids[row, : len(t)] = torch.tensor(t, device=device)
            real[row, : len(t)] = True
        hidden = block_output(model, layer, ids).float()
        keep = real & non_sink_positions(ids, hidden, special)
        part = hidden[keep].sum(0)
        total = part if total is None else total + part
        count += int(keep.sum())
    if not count:
        raise ActivationsError(f"layer {layer}: the examples hold no tokens to average")
    return total / count


def diffmean_directions(
    model,
    tokenizer,
    layer: int,
    examples: dict[int, list[list[int]]],
    features: list[int],
    norms: torch.Tensor,
    batch_size: int = 32,
) -> dict[int, torch.Tensor]:
    """feature -> mean(concept) - mean(other concepts), rescaled to its `norms` entry (the
    SAE direction's norm). Concepts without examples get no direction (logged), and
    fewer than 2 concepts with examples give none at all."""
    have = [f for f in features if examples.get(f)]
    if len(have) < len(features):
        missing = [f for f in features if f not in have]
        log.warning("layer %d: no examples, so no DiffMean, for features %s", layer, missing)
    if len(have) < 2:
        log.warning("layer %d: DiffMean needs 2 concepts with examples, has %d", layer, len(have))
        return {}
    means = torch.stack(
        [
            mean_activations(model, tokenizer, layer, examples[f], batch_size)
            for f in tqdm(have, desc=f"DiffMean layer {layer}", unit="concept")
        ]
    )
    others = (means.sum(0, keepdim=True) - means) / (len(have) - 1)
    diff = means - others
    scale = norms.to(diff)[[features.index(f) for f in have], None]
    diff = diff / diff.norm(dim=-1, keepdim=True) * scale
    return dict(zip(have, diff, strict=True))


def diffmean_cosines(
    sae_directions: dict[int, torch.Tensor], diffmean: dict[int, torch.Tensor]
) -> dict[int, float]:
    """cos(DiffMean direction, SAE direction) of each concept that has both."""
    return {
        f: round(torch.nn.functional.cosine_similarity(sae_directions[f], d, dim=0).item(), 3)
        for f, d in diffmean.items()
    }

"""Quality of an SAE on held-out text: variance explained, L0, dead latents, CE recovered."""

from __future__ import annotations

import polars as pl
import torch
from tqdm import tqdm

from saesteer.errors import ResidualsError
from saesteer.hooks import edit_block_output, non_sink_positions

SAE_METRICS_SCHEMA = {
    "layer": pl.Int32,
    "n_tokens": pl.Int64,
    "variance_explained": pl.Float64,
    "l0": pl.Float64,
    "dead_fraction": pl.Float64,  # fires on none of the training tokens counted
    "dead_tokens": pl.Int64,
    "silent_fraction": pl.Float64,  # fires on none of the held-out tokens: dead or rare
    "ce_clean": pl.Float64,
    "ce_with_sae": pl.Float64,
    "ce_zero_ablation": pl.Float64,
    "ce_loss_recovered": pl.Float64,
}


def _next_token_ce(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Summed CE of predicting tokens[:, 2:] from positions 1.. (the BOS position is skipped)."""
    pred = logits[:, 1:-1].float()
    return torch.nn.functional.cross_entropy(
        pred.reshape(-1, pred.shape[-1]), tokens[:, 2:].reshape(-1), reduction="sum"
    )


def _forward(model, layer: int, tokens: torch.Tensor, replacement=None, where=None):
    """Logits and block `layer`'s output; `replacement` replaces it where `where` is True."""
    seen = {}

    def edit(hidden):
        seen["hidden"] = hidden
        return None if replacement is None else torch.where(where, replacement, hidden)

    with edit_block_output(model, layer, edit):
        logits = model(tokens).logits
    return logits, seen["hidden"]


@torch.no_grad()
def sae_metrics(
    model,
    sae,
    layer: int,
    chunks: torch.Tensor,
    residuals: torch.Tensor,
    special_ids: list[int],
    ce_chunks: int | None = None,
    batch_size: int = 16,
    train: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, float]:
    """Metrics over `chunks` [n, ctx] (BOS first): reconstruction, L0 and silent latents on
    all of them, from block `layer`'s cached outputs `residuals` [n, ctx, d]; CE on the first
    `ce_chunks` (full forwards with the SAE spliced in).

    A latent is dead when it fires on none of the training tokens `train` = (chunks,
    residuals), SAE-Lens' sense (None: the held-out ones). A latent silent on a few thousand
    held-out tokens may only be rare: at an early block a latent for one uncommon token is.

    Special tokens and attention sinks (`hooks.non_sink_positions`, as in training) are
    neither scored nor replaced."""
    if residuals.shape[:2] != chunks.shape:
        raise ResidualsError(
            f"residuals {tuple(residuals.shape)} do not match chunks {tuple(chunks.shape)}"
        )
    device = sae.W_dec.device
    silent = torch.ones(sae.cfg.d_sae, dtype=torch.bool, device=device)
    sse = n = l0 = total_var = 0.0
    mean = torch.zeros(sae.cfg.d_in, dtype=torch.float64)  # on the host: mps has no float64
    batches = _encoded(
        sae, chunks, residuals, special_ids, batch_size, f"layer {layer} reconstruction"
    )
    for flat, latents in batches:
        silent &= ~(latents > 0).any(0)
        sse += (flat - sae.decode(latents).float()).pow(2).sum().item()
        l0 += (latents > 0).sum().item()
        # The variance from per-batch centred sums (float32 on the device, no cancellation),
        # merged on the host in float64 (Chan et al.'s pairwise update).
        batch_mean = flat.mean(0)
        batch_m2 = (flat - batch_mean).pow(2).sum().item()
        delta = batch_mean.cpu().double() - mean
        m = flat.shape[0]
        mean += delta * m / (n + m)
        total_var += batch_m2 + delta.pow(2).sum().item() * n * m / (n + m)
        n += m
    ce = _ce_metrics(model, sae, layer, chunks[:ce_chunks], special_ids, batch_size)
    dead, dead_tokens = silent, int(n)
    if train is not None:
        dead, dead_tokens = _never_fired(sae, *train, special_ids, batch_size)
    return {
        "layer": layer,
        "n_tokens": int(n),
        "variance_explained": 1.0 - sse / total_var,
        "l0": l0 / n,
        "dead_fraction": dead.float().mean().item(),
        "dead_tokens": dead_tokens,
        "silent_fraction": silent.float().mean().item(),
        **ce,
    }


def _never_fired(sae, chunks, residuals, special_ids, batch_size) -> tuple[torch.Tensor, int]:
    """The latents that fire on none of the cached tokens, and how many tokens were seen."""
    silent = torch.ones(sae.cfg.d_sae, dtype=torch.bool, device=sae.W_dec.device)
    n = 0
    for flat, latents in _encoded(sae, chunks, residuals, special_ids, batch_size, "dead latents"):
        silent &= ~(latents > 0).any(0)
        n += len(flat)
    return silent, n


def _encoded(sae, chunks, residuals, special_ids, batch_size, desc: str):
    """(residuals, latents) of the scored positions (no special tokens or attention sinks,
    as in training), batch by batch, the residuals in float32."""
    device = sae.W_dec.device
    for start in tqdm(range(0, len(chunks), batch_size), desc=desc):
        tokens = chunks[start : start + batch_size].to(device)
        hidden = residuals[start : start + batch_size].to(device)
        flat = hidden[non_sink_positions(tokens, hidden, special_ids)].float()
        if len(flat):
            yield flat, sae.encode(flat.to(sae.W_dec.dtype))


def _ce_metrics(model, sae, layer: int, chunks, special_ids, batch_size: int) -> dict:
    device = next(model.parameters()).device
    sums = dict.fromkeys(["clean", "sae", "zero"], 0.0)
    n_targets = 0
    for start in tqdm(range(0, len(chunks), batch_size), desc=f"layer {layer} cross entropy"):
        tokens = chunks[start : start + batch_size].to(device)
        clean_logits, hidden = _forward(model, layer, tokens)
        keep = non_sink_positions(tokens, hidden, special_ids).unsqueeze(-1)
        recon = sae.decode(sae.encode(hidden.to(sae.W_dec.dtype))).to(hidden.dtype)
        sae_logits, _ = _forward(model, layer, tokens, recon, keep)
        zero_logits, _ = _forward(model, layer, tokens, torch.zeros_like(recon), keep)
        sums["clean"] += _next_token_ce(clean_logits, tokens).item()
        sums["sae"] += _next_token_ce(sae_logits, tokens).item()
        sums["zero"] += _next_token_ce(zero_logits, tokens).item()
        n_targets += tokens[:, 2:].numel()
    ce = {k: v / n_targets for k, v in sums.items()}
    return {
        "ce_clean": ce["clean"],
        "ce_with_sae": ce["sae"],
        "ce_zero_ablation": ce["zero"],
        "ce_loss_recovered": (ce["zero"] - ce["sae"]) / (ce["zero"] - ce["clean"]),
    }

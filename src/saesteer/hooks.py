"""Forward hooks on a decoder block's output (the residual stream after block L)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from saesteer.models import decoder_layers


@contextmanager
def edit_block_output(
    model, layer: int, edit: Callable[[torch.Tensor], torch.Tensor | None]
) -> Iterator[None]:
    """Apply `edit(hidden)` to block `layer`'s output hidden states [batch, pos, d_model].

    `edit` returns a replacement tensor, or None to leave the output unchanged (to read it).
    """

    def hook(module, inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        new = edit(hidden)
        if new is None:
            return None
        return (new, *output[1:]) if isinstance(output, tuple) else new

    handle = decoder_layers(model)[layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


class _StopForward(Exception):
    """Raised by a hook to skip the blocks after the one that was read."""


@torch.no_grad()
def block_output(model, layer: int, tokens: torch.Tensor) -> torch.Tensor:
    """Block `layer`'s output for `tokens`, running the model only up to that block."""
    seen = {}

    def read(hidden):
        seen["hidden"] = hidden
        raise _StopForward

    with edit_block_output(model, layer, read), contextlib.suppress(_StopForward):
        model(tokens)
    return seen["hidden"]


def non_sink_positions(
    tokens: torch.Tensor, hidden: torch.Tensor, special_ids: list[int], factor: float = 10.0
) -> torch.Tensor:
    """Bool mask [batch, pos] of positions an SAE should model.

    Drops special tokens (BOS leads every chunk) and attention-sink positions, whose
    residual norm is `factor` times the median or more (in SmolLM2 the BOS position and,
    rarely, the token right after it: 0.02% of tokens at layer 27, with norms ~40x the
    median, enough to dominate any squared-error statistic)."""
    keep = ~torch.isin(
        tokens, torch.as_tensor(special_ids, dtype=tokens.dtype, device=tokens.device)
    )
    norms = hidden.norm(dim=-1)
    if keep.any():
        keep &= norms <= factor * norms[keep].median()
    return keep

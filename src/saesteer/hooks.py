"""Forward hooks on a decoder block's output (the residual stream after block L)."""

from __future__ import annotations

import contextlib
import weakref
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
def block_outputs(
    model, layers: list[int], tokens: torch.Tensor, **forward
) -> dict[int, torch.Tensor]:
    """The outputs of blocks `layers` for `tokens` from one forward (given the keywords
    `forward`) that stops after the deepest of them."""
    seen = {}
    last = max(layers)

    def reader(layer):
        def read(hidden):
            seen[layer] = hidden
            if layer == last:
                raise _StopForward

        return read

    with contextlib.ExitStack() as stack:
        for layer in sorted(set(layers)):
            stack.enter_context(edit_block_output(model, layer, reader(layer)))
        with contextlib.suppress(_StopForward):
            model(tokens, **forward)
    return {layer: seen[layer] for layer in layers}


def block_output(model, layer: int, tokens: torch.Tensor, **forward) -> torch.Tensor:
    """Block `layer`'s output for `tokens`, running the model only up to that block."""
    return block_outputs(model, [layer], tokens, **forward)[layer]


class _Replay(torch.nn.Module):
    """Stands in for a block whose output is already known."""

    def __init__(self, hidden: torch.Tensor, as_tuple: bool):
        super().__init__()
        self.hidden, self.as_tuple = hidden, as_tuple

    def forward(self, *args, **kwargs):
        return (self.hidden,) if self.as_tuple else self.hidden


_RETURNS_TUPLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@torch.no_grad()
def _blocks_return_tuples(model) -> bool:
    """Whether decoder blocks return a tuple or a tensor (it differs across architectures)."""
    if model not in _RETURNS_TUPLES:
        seen = {}

        def record(module, inputs, output):
            seen["tuple"] = isinstance(output, tuple)
            raise _StopForward

        device = next(model.parameters()).device
        handle = decoder_layers(model)[0].register_forward_hook(record)
        try:
            with contextlib.suppress(_StopForward):
                model(torch.zeros(1, 1, dtype=torch.long, device=device))
        finally:
            handle.remove()
        _RETURNS_TUPLES[model] = seen["tuple"]
    return _RETURNS_TUPLES[model]


@contextmanager
def start_after_block(model, layer: int, hidden: torch.Tensor) -> Iterator[None]:
    """Make blocks 0..`layer` return `hidden` [batch, pos, d] without computing anything, so
    a forward call runs only the blocks after `layer`.

    The skipped blocks neither read nor extend a KV cache; the cache's first layer still
    holds the prefix length the model derives positions and masks from."""
    blocks = decoder_layers(model)
    originals = [blocks[i] for i in range(layer + 1)]
    replay = _Replay(hidden, _blocks_return_tuples(model))
    for i in range(layer + 1):
        blocks[i] = replay
    try:
        yield
    finally:
        for i, block in enumerate(originals):
            blocks[i] = block


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

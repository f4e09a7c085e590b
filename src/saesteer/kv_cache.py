"""KV caches of transformers' models: sharing rows without copies, room to write in place.

Output scores, generations and their metrics run many rows on one prompt's cache, and
sampling grows a cache one token at a time; transformers' own copies (a deep copy per
batch, a concatenation per token) cost a large share of those jobs' time. This module
also hides where transformers 5 renamed the cache keyword.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def cache_with_room(cache, extra: int):
    """`cache` with room for `extra` more positions in each full-attention layer: a forward
    writes its keys and values in place, where a dynamic cache concatenates and so copies
    all of itself at every sampled token (29% of a 64-token sampling run's time on a CPU).
    Its tensors are then written in place: never share them (`cache_rows`)."""
    from transformers.cache_utils import DynamicLayer

    roomy = _roomy_layer()
    cache.layers = [
        roomy(layer, extra) if type(layer) is DynamicLayer and layer.is_initialized else layer
        for layer in cache.layers
    ]
    return cache


@functools.cache
def _roomy_layer():
    from transformers.cache_utils import DynamicLayer

    class RoomyLayer(DynamicLayer):
        """Keys and values are views of longer buffers, filled in place."""

        def __init__(self, layer, extra: int):
            super().__init__()
            self.__dict__.update(layer.__dict__)
            n = layer.keys.shape[-2]
            self.buffers = [self._with_room(t, n, n + extra) for t in (layer.keys, layer.values)]
            self._show(n)

        @staticmethod
        def _with_room(tensor, n: int, size: int):
            buffer = tensor.new_empty((*tensor.shape[:-2], size, tensor.shape[-1]))
            buffer[..., :n, :] = tensor[..., :n, :]
            return buffer

        def _show(self, n: int) -> None:
            self.keys, self.values = (b[..., :n, :] for b in self.buffers)

        def update(self, key_states, value_states, *args, **kwargs):
            n, k = self.keys.shape[-2], key_states.shape[-2]
            if n + k > self.buffers[0].shape[-2]:  # more than the room: double it
                self.buffers = [self._with_room(b, n, 2 * (n + k)) for b in self.buffers]
            self.buffers[0][..., n : n + k, :] = key_states
            self.buffers[1][..., n : n + k, :] = value_states
            self._show(n + k)
            return self.keys, self.values

        def reorder_cache(self, beam_idx) -> None:
            n = self.keys.shape[-2]
            self.buffers = [b.index_select(0, beam_idx.to(b.device)) for b in self.buffers]
            self._show(n)

    return RoomyLayer


def cache_keyword(model) -> str:
    """The forward keyword of the KV cache: transformers 5 renamed `past_key_values` to
    `cache`."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def returned_cache(output):
    return output["cache"] if "cache" in output else output["past_key_values"]


def cache_rows(cache, rows: int | torch.Tensor):
    """A new KV cache over rows of `cache`: `rows` times its one row, or the rows at the
    indices `rows`, leaving `cache` as it was.

    A dynamic cache's forward concatenates new keys onto the old ones and never writes into
    them, so the new cache can hold views: repeats cost no copy, picks one gather (a deep
    copy first copied every block's keys, even those of blocks a forward skips)."""
    import torch
    from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

    concatenating = (DynamicLayer, DynamicSlidingWindowLayer)
    if not isinstance(cache, DynamicCache) or any(
        type(layer) not in concatenating for layer in cache.layers
    ):  # a cache that may write in place (`cache_with_room`'s, a static one)
        new = copy.deepcopy(cache)
        if isinstance(rows, int):
            new.batch_repeat_interleave(rows)
        else:
            new.reorder_cache(rows)
        return new
    new = copy.copy(cache)
    new.layers = [copy.copy(layer) for layer in cache.layers]
    for layer in new.layers:
        if not getattr(layer, "is_initialized", True) or layer.keys is None:
            continue
        for name in ("keys", "values"):
            tensor = getattr(layer, name)
            if isinstance(rows, int):
                tensor = tensor.expand(rows, *tensor.shape[1:])
            else:
                tensor = tensor.index_select(0, torch.as_tensor(rows, device=tensor.device))
            setattr(layer, name, tensor)
    return new

"""The residual cache: one model pass over the corpus for all of a run's layers.

SAE training, mining and the SAE metrics all read block L's output over the same corpus
chunks. Running the model once, up to the deepest configured block, and keeping every
configured block's output costs one pass per run instead of three per layer. Each layer's
residuals go to their own file (`residuals/layer_<L>.safetensors`), so per-layer jobs read
only their layer and a new layer's file leaves the others' untouched.

A file holds two tensors, `train` and `heldout`, each [chunks, context, d_model] in the
model's dtype (exactly what the model produced), for the first chunks of each split in
`chunks.parquet` order.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from saesteer.errors import ResidualsError
from saesteer.io import atomic_path

if TYPE_CHECKING:  # torch is imported where it is used: the CLI's errors must not need it
    import numpy as np
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResidualSizes:
    """Chunks of each split to cache: as many as the most demanding consumer reads."""

    train_chunks: int | None  # None: every train chunk
    heldout_chunks: int

    @classmethod
    def needed(
        cls,
        context_size: int,
        activation_tokens: list[int],
        mining_tokens: list[int | None],
        metrics_tokens: int | None,
    ) -> ResidualSizes:
        """Training reads `activation_tokens` non-special positions (BOS costs one per
        chunk), mining `max_tokens // context` chunks (None: all of them), the metrics
        `max_tokens // context` held-out chunks (None: no trained layer)."""
        train = [math.ceil(n / (context_size - 1)) for n in activation_tokens]
        if None in mining_tokens:
            return cls(None, _heldout(metrics_tokens, context_size))
        train += [max(1, n // context_size) for n in mining_tokens]
        return cls(max(train, default=0), _heldout(metrics_tokens, context_size))


def _heldout(metrics_tokens: int | None, context_size: int) -> int:
    return 0 if metrics_tokens is None else max(1, metrics_tokens // context_size)


def collect_residuals(
    model, layers: list[int], chunks: np.ndarray, batch_size: int = 16, desc: str = ""
) -> dict[int, torch.Tensor]:
    """Blocks `layers`' outputs for every chunk of `chunks` [n, ctx] (numpy or torch), one
    forward per batch
    up to the deepest block; on the host, in the model's dtype."""
    import torch

    from saesteer.hooks import block_outputs

    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    n, ctx = chunks.shape
    d_model = model.config.get_text_config().hidden_size
    out = {layer: torch.empty((n, ctx, d_model), dtype=dtype) for layer in layers}
    for start in tqdm(range(0, n, batch_size), desc=f"residuals {desc}".strip()):
        tokens = torch.as_tensor(chunks[start : start + batch_size]).to(device)
        with torch.no_grad():
            hidden_by_layer = block_outputs(model, layers, tokens)
        for layer, hidden in hidden_by_layer.items():
            out[layer][start : start + len(tokens)] = hidden.cpu()
    return out


def write_residuals(
    path: str | Path, layer: int, tensors: dict[str, torch.Tensor], model_path: str
) -> None:
    from safetensors.torch import save_file

    metadata = {"layer": str(layer), "model": str(model_path)}
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)


def cache_residuals(
    model,
    model_path: str,
    layers: list[int],
    chunks: dict[str, np.ndarray],
    outputs: list[str | Path],
    batch_size: int = 16,
) -> None:
    """Write `outputs[i]` for `layers[i]`: each split of `chunks` through one model pass."""
    if len(layers) != len(outputs):
        raise ResidualsError(f"{len(layers)} layers but {len(outputs)} output files")
    cached = {
        split: collect_residuals(model, layers, c, batch_size, split) for split, c in chunks.items()
    }
    for layer, out in zip(layers, outputs, strict=True):
        write_residuals(out, layer, {s: cached[s][layer] for s in chunks}, model_path)
        log.info(
            "layer %d: %s",
            layer,
            {s: tuple(cached[s][layer].shape) for s in chunks},
        )


def read_residuals(
    path: str | Path,
    split: str,
    layer: int,
    n_chunks: int | None = None,
    *,
    at_most: int | None = None,
) -> torch.Tensor:
    """The first `n_chunks` chunks (None: all) of `split` in a layer's cache file, checked
    to be that layer's and to hold enough chunks; or the first `at_most`, all if fewer."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ResidualsError(f"{path}: no residual cache (rule `residuals` writes it)")
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("layer") != str(layer):
            raise ResidualsError(
                f"{path}: holds layer {meta.get('layer')!r} residuals, not layer {layer}"
            )
        if split not in set(f.keys()):
            raise ResidualsError(f"{path}: has no {split!r} residuals")
        part = f.get_slice(split)
        have = part.get_shape()[0]
        if n_chunks is not None and n_chunks > have:
            raise ResidualsError(
                f"{path}: holds {have} {split} chunks, {n_chunks} are needed "
                "(rerun rule `residuals`)"
            )
        if at_most is not None:
            return part[: min(have, at_most)]
        return part[: have if n_chunks is None else n_chunks]

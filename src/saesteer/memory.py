"""Batch sizes that fit the device.

The configured batch sizes are sized for the embedded models on a CPU, where memory is
plentiful next to a 135M-270M model. On a GPU holding a 2B or 9B model, the same rows can
need more than what is free: each fast path asks `fitting_rows` for the rows one forward
may take, from the device's free memory and what one row needs. Results equal those of
any other batch size within float tolerance (each sampled row has its own random stream;
a float's last bits can differ with the batch, and so, rarely, a sampled token)."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

# Share of the free memory a forward's rows may take: the rest is for the allocator's
# fragmentation and the tensors a forward makes besides those counted per row.
HEADROOM = 0.7


def free_bytes(device: torch.device | str) -> int | None:
    """Free memory on an accelerator; None on a CPU (the configured sizes apply there)."""
    device = torch.device(device)
    if device.type == "cuda":
        # memory PyTorch's allocator holds but does not use is free to this process
        held = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return torch.cuda.mem_get_info(device)[0] + held
    return None


def row_bytes(model, positions: int, logit_rows: int = 1) -> int:
    """Memory one row of a forward holds at its peak: the KV cache of `positions` in every
    block, one block's activations at those positions (the MLP's three widths and the
    residual's few copies), and `logit_rows` rows of float32 logits with their softmax and
    comparison (three vocabulary-wide copies)."""
    text = model.config.get_text_config()
    size = next(model.parameters()).element_size()
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    kv_heads = getattr(text, "num_key_value_heads", None) or text.num_attention_heads
    cache = 2 * text.num_hidden_layers * kv_heads * head_dim * positions * size
    # GPT-2 names its MLP width n_inner, and None means 4 x d
    ff = getattr(text, "intermediate_size", None) or getattr(text, "n_inner", None)
    block = positions * (4 * text.hidden_size + 3 * (ff or 4 * text.hidden_size)) * size
    logits = logit_rows * text.vocab_size * 4 * 3
    return cache + block + logits


def fitting_rows(model, configured: int, per_row: int) -> int:
    """`configured`, or fewer rows where that many would not fit the model's device."""
    device = next(model.parameters()).device
    free = free_bytes(device)
    if free is None:
        return configured
    fit = max(1, int(free * HEADROOM // per_row))
    if fit < configured:
        log.info(
            "%d rows a forward instead of %d: %.1f GiB free on %s, %.1f MiB a row",
            fit,
            configured,
            free / 2**30,
            device,
            per_row / 2**20,
        )
    return min(configured, fit)

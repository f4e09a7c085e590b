"""Batch sizes from the device's free memory, with the memory query mocked: the rows a
forward takes shrink to what fits, and the values do not change."""

import pytest
import torch

from saesteer import memory
from saesteer.gen_metrics import perplexities
from saesteer.logit_lens import logit_lens_topk
from saesteer.memory import fitting_rows, free_bytes, row_bytes
from saesteer.models import decoder_layers
from saesteer.output_score import score_prompt_fast
from tests.helpers import random_sae


def test_a_cpu_keeps_the_configured_rows(tiny_model):
    model, _ = tiny_model
    assert free_bytes("cpu") is None
    assert fitting_rows(model, 256, 10**12) == 256


def test_cuda_free_memory_is_read_from_the_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (3 * 2**30, 80 * 2**30))
    assert free_bytes("cuda:0") == 3 * 2**30


def test_rows_shrink_to_the_free_memory(tiny_model, monkeypatch):
    model, _ = tiny_model
    monkeypatch.setattr(memory, "free_bytes", lambda device: 10_000)
    assert fitting_rows(model, 256, 1_000) == int(10_000 * memory.HEADROOM // 1_000)
    assert fitting_rows(model, 4, 1_000) == 4  # never more than configured
    assert fitting_rows(model, 256, 10**9) == 1  # at least one row


def test_a_row_of_a_9b_model_needs_what_its_cache_and_logits_take():
    """Gemma-2-9B's shapes in float32: 42 blocks x 8 KV heads x 256 x 2 (keys, values)
    x 4 bytes per position, plus three float32 copies of 256k logits."""
    from transformers import Gemma2Config

    config = Gemma2Config(
        hidden_size=3584,
        intermediate_size=14336,
        num_hidden_layers=42,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=256,
        vocab_size=256000,
    )

    class Model:  # the shapes and the dtype are all row_bytes reads
        def __init__(self):
            self.config = config

        def parameters(self):
            yield torch.empty(1, dtype=torch.float32)

    per_position = 42 * 8 * 256 * 2 * 4 + (4 * 3584 + 3 * 14336) * 4
    assert row_bytes(Model(), 100) == 100 * per_position + 3 * 256000 * 4


class _RowCounter:
    """The most rows any forward of the last block saw."""

    def __init__(self, model):
        self.most = 0
        self.handle = decoder_layers(model)[-1].register_forward_hook(self.hook)

    def hook(self, module, inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        self.most = max(self.most, hidden.shape[0])


def _fits(model, rows: int, positions: int):
    """A mocked free memory that fits `rows` rows of `positions`."""
    return lambda device: int(rows * row_bytes(model, positions) / memory.HEADROOM) + 1


def test_output_scores_are_the_same_in_the_rows_that_fit(tiny_model, monkeypatch):
    model, _ = tiny_model
    sae = random_sae("topk", layer=0, seed=0)
    features = list(range(0, 60, 7))
    tokens = logit_lens_topk(model, sae.W_dec, features, 5)[0]
    prompt = [1, 5, 9, 20]
    full = score_prompt_fast(model, sae, 0, prompt, features, tokens, 10.0, 64)
    monkeypatch.setattr(memory, "free_bytes", _fits(model, 3, len(prompt)))
    counter = _RowCounter(model)
    try:
        small = score_prompt_fast(model, sae, 0, prompt, features, tokens, 10.0, 64)
    finally:
        counter.handle.remove()
    assert counter.most == 3 + 1  # the unsteered row rides along in the first forward
    for key in full:
        torch.testing.assert_close(small[key], full[key])


def test_perplexities_are_the_same_in_the_rows_that_fit(tiny_model, monkeypatch):
    model, _ = tiny_model
    prefixes = [[1, 4 + i] for i in range(6)]
    continuations = [[7, 8, 9][: 1 + i % 3] for i in range(6)]
    full = perplexities(model, prefixes, continuations, True, 32)
    monkeypatch.setattr(memory, "free_bytes", _fits(model, 2, 5))
    counter = _RowCounter(model)
    try:
        small = perplexities(model, prefixes, continuations, True, 32)
    finally:
        counter.handle.remove()
    assert counter.most == 2
    assert small == pytest.approx(full, rel=1e-5)

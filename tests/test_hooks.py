import torch

from saesteer.hooks import block_output, edit_block_output, start_after_block
from saesteer.models import load_model


def test_block_output_stops_early_and_matches_the_full_forward(tiny_model_dir):
    model, _ = load_model(tiny_model_dir, device="cpu")
    tokens = torch.randint(3, 128, (2, 9), generator=torch.Generator().manual_seed(1))
    seen = []
    with edit_block_output(model, 2, seen.append):
        model(tokens)
    calls = []
    last = model.model.layers[3].register_forward_hook(lambda *a: calls.append(1))
    early = block_output(model, 2, tokens)
    last.remove()
    torch.testing.assert_close(early, seen[0])
    assert calls == []  # block 3 never ran


def test_edit_replaces_the_block_output(tiny_model_dir):
    model, _ = load_model(tiny_model_dir, device="cpu")
    tokens = torch.tensor([[1, 5, 6]])
    with edit_block_output(model, 3, torch.zeros_like):
        zeroed = model(tokens).logits
    # A zero residual after the last block leaves only the unembedding of norm(0) = 0.
    torch.testing.assert_close(zeroed, torch.zeros_like(zeroed))


def _refuse(*args):
    raise AssertionError("a replayed block ran")


def test_start_after_block_runs_the_rest_on_a_cached_prefix(tiny_model_dir):
    """Blocks 0..L replayed from their known output, the prefix from its KV cache: the
    last position's logits equal a plain forward of the whole sequence."""
    model, _ = load_model(tiny_model_dir, device="cpu")
    tokens = torch.tensor([[1, 17, 42, 99, 5]])
    full = model(tokens).logits[0, -1]
    for layer in range(4):
        cache = model(tokens[:, :-1], use_cache=True).cache
        hidden = block_output(model, layer, tokens)[:, -1:]
        first = model.model.layers[0]
        with start_after_block(model, layer, hidden):
            handle = first.register_forward_hook(_refuse)
            logits = model(tokens[:, -1:], cache=cache).logits[0, -1]
        handle.remove()
        torch.testing.assert_close(logits, full, atol=1e-5, rtol=1e-5)
    assert isinstance(model.model.layers[0], type(model.model.layers[1]))  # restored

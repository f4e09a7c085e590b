"""The residual cache: one pass for all layers equals a forward per layer, and each layer's
file reads back only as that layer's, with enough chunks."""

import pytest
import torch

from saesteer.errors import ResidualsError
from saesteer.mining import _read_block_output
from saesteer.residuals import ResidualSizes, cache_residuals, collect_residuals, read_residuals
from tests.helpers import TINY_VOCAB


def _chunks(n=7, length=12, seed=5):
    tokens = torch.randint(
        3, TINY_VOCAB, (n, length), generator=torch.Generator().manual_seed(seed)
    )
    tokens[:, 0] = 1
    return tokens


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_one_pass_equals_a_forward_per_layer(any_tiny_model, batch_size):
    """Every layer's slice of the one pass is what a forward stopped at that layer reads
    (the reference hook is mining's, which shares no code with the cache)."""
    model, _ = any_tiny_model
    chunks = _chunks()
    cached = collect_residuals(model, [0, 2, 3], chunks, batch_size=batch_size)
    for layer in (0, 2, 3):
        expected = torch.cat([_read_block_output(model, layer, c[None]) for c in chunks])
        assert cached[layer].dtype == next(model.parameters()).dtype
        torch.testing.assert_close(cached[layer], expected, rtol=1e-5, atol=1e-5)


def test_files_round_trip_per_layer(tiny_model, tmp_path):
    model, _ = tiny_model
    train, heldout = _chunks(), _chunks(3, seed=6)
    outs = [tmp_path / "layer_1.safetensors", tmp_path / "layer_3.safetensors"]
    cache_residuals(model, "tiny", [1, 3], {"train": train, "heldout": heldout}, outs, 4)
    expected = collect_residuals(model, [1, 3], train)
    assert torch.equal(read_residuals(outs[1], "train", 3), expected[3])
    assert torch.equal(read_residuals(outs[0], "train", 1, 2), expected[1][:2])
    assert read_residuals(outs[0], "heldout", 1).shape == (3, 12, 64)
    with pytest.raises(ResidualsError, match="holds layer '1' residuals, not layer 3"):
        read_residuals(outs[0], "train", 3)
    with pytest.raises(ResidualsError, match="holds 7 train chunks, 8 are needed"):
        read_residuals(outs[0], "train", 1, 8)
    with pytest.raises(ResidualsError, match="no residual cache"):
        read_residuals(tmp_path / "layer_2.safetensors", "train", 2)
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_the_cache_holds_what_its_most_demanding_reader_needs():
    # training 1000 tokens over 127 per chunk: 8 chunks; mining 2048 // 128 = 16
    sizes = ResidualSizes.needed(128, [1000, 300], [2048], 4096)
    assert sizes == ResidualSizes(train_chunks=16, heldout_chunks=32)
    assert ResidualSizes.needed(128, [5000], [], None) == ResidualSizes(40, 0)
    assert ResidualSizes.needed(128, [5000], [None], 100).train_chunks is None

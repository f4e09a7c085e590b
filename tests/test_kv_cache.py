"""saesteer.kv_cache: rows of a cache shared without copies, room to write in place."""

import pytest
import torch

from saesteer.kv_cache import cache_keyword, cache_rows, cache_with_room, returned_cache


def _logits_after(model, cache, ids):
    return model(ids, use_cache=True, **{cache_keyword(model): cache}).logits


@pytest.mark.parametrize("rows", [3, [2, 0, 2]])
def test_cache_rows_equal_a_deep_copy_and_leave_the_cache_as_it_was(any_tiny_model, rows):
    """Repeats (views) and picks (one gather) give the logits a deep copy would, and a
    forward on the new cache does not change the old one."""
    import copy

    model, _ = any_tiny_model
    batch = 1 if isinstance(rows, int) else 3
    prefix = torch.arange(5, 11).repeat(batch, 1)
    cache = returned_cache(model(prefix, use_cache=True))
    before = [t.clone() for layer in cache.layers for t in (layer.keys, layer.values)]
    expected = copy.deepcopy(cache)
    if isinstance(rows, int):
        expected.batch_repeat_interleave(rows)
    else:
        expected.reorder_cache(torch.tensor(rows))
    n = rows if isinstance(rows, int) else len(rows)
    ids = torch.tensor([[3, 4]]).expand(n, 2)
    new = cache_rows(cache, rows if isinstance(rows, int) else torch.tensor(rows))
    torch.testing.assert_close(_logits_after(model, new, ids), _logits_after(model, expected, ids))
    after = [t for layer in cache.layers for t in (layer.keys, layer.values)]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_a_cache_with_room_gives_the_logits_of_a_dynamic_cache(any_tiny_model):
    """Steps written in place, past the room given (the buffers double) and with rows
    leaving the batch, give the logits concatenation gives."""
    import copy

    model, _ = any_tiny_model
    keyword = cache_keyword(model)
    prompt = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]])
    plain = returned_cache(model(prompt, use_cache=True))
    roomy = cache_with_room(copy.deepcopy(plain), 2)
    converted = [layer for layer in roomy.layers if hasattr(layer, "buffers")]
    assert converted  # the full-attention layers have room
    first = converted[0].buffers[0].data_ptr()
    ids, n = prompt[:, -1:], prompt.shape[1]
    for step in range(5):
        if step == 3:  # row 1 stops
            keep = torch.tensor([0, 2])
            plain.reorder_cache(keep)
            roomy.reorder_cache(keep)
            ids = ids[keep]
        position = torch.full((len(ids), 1), n + step)
        want = model(ids, position_ids=position, use_cache=True, **{keyword: plain}).logits
        got = model(ids, position_ids=position, use_cache=True, **{keyword: roomy}).logits
        torch.testing.assert_close(got, want)
        if step == 0:  # written in place, within the room
            assert converted[0].buffers[0].data_ptr() == first
        ids = want[:, -1].argmax(-1, keepdim=True)

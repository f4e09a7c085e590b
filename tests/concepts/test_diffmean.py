"""DiffMean directions against a per-example loop."""

import polars as pl
import torch

from saesteer.concepts.diffmean import diffmean_directions, example_token_ids
from saesteer.hooks import block_output


def test_diffmean_matches_a_per_example_loop(any_tiny_model):
    model, tokenizer = any_tiny_model
    layer = 1
    examples = {
        1: [[5, 6, 7], [8, 9]],
        2: [[10, 11, 12, 13], [14]],
        3: [[15, 16], [17, 18, 19], [20]],
    }
    norms = torch.tensor([1.0, 2.0, 3.0])
    fast = diffmean_directions(model, tokenizer, layer, examples, [1, 2, 3], norms, batch_size=2)

    def mean_of(texts):  # one unpadded example at a time, BOS dropped
        rows = [block_output(model, layer, torch.tensor([[1, *t]]))[0, 1:] for t in texts]
        return torch.cat(rows).float().mean(0)

    means = {f: mean_of(t) for f, t in examples.items()}
    for i, f in enumerate([1, 2, 3]):
        others = torch.stack([m for g, m in means.items() if g != f]).mean(0)
        expected = means[f] - others
        expected = expected / expected.norm() * norms[i]
        torch.testing.assert_close(fast[f], expected, rtol=1e-4, atol=1e-5)
    # A source's own leading BOS is not doubled.
    with_bos = {f: [[1, *t] for t in texts] for f, texts in examples.items()}
    again = diffmean_directions(model, tokenizer, layer, with_bos, [1, 2, 3], norms)
    torch.testing.assert_close(again[2], fast[2], rtol=1e-4, atol=1e-5)
    # Concepts without examples get no direction; fewer than 2 concepts give none.
    assert set(diffmean_directions(model, tokenizer, layer, examples, [1, 2, 9], norms)) == {1, 2}
    assert diffmean_directions(model, tokenizer, layer, examples, [1], norms[:1]) == {}


def test_example_token_ids_from_ids_or_strings(tiny_model):
    _, tokenizer = tiny_model
    acts = pl.DataFrame(
        {"feature": [1, 2], "tokens": [["w1", "▁w2"], ["w3", "▁w4"]], "token_ids": [[4, 5], None]},
        schema={"feature": pl.Int64, "tokens": pl.List(pl.Utf8), "token_ids": pl.List(pl.Int64)},
    )
    got = example_token_ids(acts, tokenizer)
    assert got[1] == [[4, 5]]
    assert got[2] == [tokenizer("w3 w4", add_special_tokens=False)["input_ids"]]

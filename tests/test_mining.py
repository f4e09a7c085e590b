"""Local mining: the batched single pass against the per-feature, chunk-by-chunk reference
loop, and a planted feature on the embedded model."""

import contextlib

import pytest
import torch
from sae_lens import StandardSAE, StandardSAEConfig
from sae_lens.saes.sae import SAEMetadata

from saesteer.activations import activations_frame
from saesteer.hooks import block_output, non_sink_positions
from saesteer.input_score import InputScoreSettings, score_input
from saesteer.logit_lens import logit_lens_frame, logit_lens_topk
from saesteer.mining import (
    MiningSettings,
    density_reference,
    histogram_reference,
    mine_reference,
    mine_top_examples,
    top_examples_by_feature,
)
from saesteer.residuals import collect_residuals
from saesteer.settings import settings_for
from tests.helpers import TINY_VOCAB, random_sae


@pytest.fixture(scope="module")
def chunks():
    generator = torch.Generator().manual_seed(3)
    tokens = torch.randint(3, TINY_VOCAB, (23, 16), generator=generator)
    tokens[:, 0] = 1  # BOS
    tokens[5, 7] = 2  # a special token mid-chunk: never an example's peak
    return tokens


@pytest.mark.parametrize("kind", ["standard", "topk", "jumprelu"])
@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_batched_mining_equals_the_reference_loop(any_tiny_model, chunks, kind, batch_size):
    model, tokenizer = any_tiny_model
    sae = random_sae(kind, layer=2)
    features = [0, 17, 100, 255]
    settings = settings_for(
        MiningSettings, n_examples=7, context_before=3, context_after=2, batch_size=batch_size
    )
    special = tokenizer.all_special_ids
    top = mine_top_examples(
        collect_residuals(model, [2], chunks)[2], sae, chunks, features, special, settings
    )
    mined = top_examples_by_feature(top, features, tokenizer)
    expected = {f: mine_reference(model, sae, 2, chunks, f, special, settings) for f in features}
    assert sum(len(e) for e in expected.values()) >= 10  # the loops below compare examples
    for row, f in enumerate(features):
        assert len(mined[f]) == len(expected[f])
        pairs = zip(mined[f], expected[f], strict=True)
        for col, (example, (value, chunk, ids, acts)) in enumerate(pairs):
            assert top.chunk[row, col].item() == chunk
            assert example.token_ids == ids
            assert example.tokens == tokenizer.convert_ids_to_tokens(ids)
            assert example.values == pytest.approx(acts, abs=1e-5)
            assert example.values[example.max_token_index] == pytest.approx(value, abs=1e-5)
            assert 2 not in [ids[example.max_token_index]]
    # Activation density: the share of kept positions each feature fires on.
    densities = [density_reference(model, sae, 2, chunks, f, special) for f in features]
    assert top.density() == pytest.approx(densities, abs=1e-12)
    # Its histogram: every firing position in its bin (the fired counts add up).
    hists = [histogram_reference(model, sae, 2, chunks, f, special) for f in features]
    assert top.histogram.tolist() == hists
    assert top.histogram.sum(1).tolist() == top.n_active.tolist()
    assert sum(1 for h in hists for c in h if c) >= 6  # spread over bins, not all in one
    assert top.n_tokens == 23 * 15 - 1  # every position but the BOS and the one special token


SINK = 53  # w50


@contextlib.contextmanager
def planted_sink(model, token: int, scale: float = 300.0):
    """Token `token`'s embedding scaled up, so its residual is an attention-sink-like
    outlier at every layer (restored afterwards: the model is shared)."""
    weight = model.get_input_embeddings().weight
    original = weight[token].clone()
    with torch.no_grad():
        weight[token] *= scale
    try:
        yield
    finally:
        with torch.no_grad():
            weight[token] = original


def test_attention_sinks_are_never_examples(any_tiny_model, chunks):
    """A huge-norm position is dropped by the fast path and by the reference's own filter;
    without the filter it would be the peak of most examples."""
    model, tokenizer = any_tiny_model
    sae = random_sae("standard", layer=1)
    features, special = [0, 17, 100, 255], tokenizer.all_special_ids
    planted = chunks.clone()
    planted[::2, 9] = SINK
    settings = settings_for(MiningSettings, n_examples=23, context_before=16, context_after=16)
    with planted_sink(model, SINK):
        hidden = block_output(model, 1, planted)
        assert not non_sink_positions(planted, hidden, special)[::2, 9].any()
        top = mine_top_examples(hidden, sae, planted, features, special, settings)
        mined = top_examples_by_feature(top, features, tokenizer)
        expected = {
            f: mine_reference(model, sae, 1, planted, f, special, settings) for f in features
        }
        # without the filter the sink would be the peak of several examples
        latents = sae.encode(hidden[::2].to(sae.W_dec.dtype))[..., features]  # [c, T, F]
        assert (latents.argmax(1) == 9).sum() >= 2
    assert sum(len(e) for e in expected.values()) >= 10
    for f in features:
        assert [e.token_ids for e in mined[f]] == [ids for _, _, ids, _ in expected[f]]
        for example in mined[f]:
            peak = example.token_ids[example.max_token_index]
            assert peak != SINK and peak not in special
            sink_values = [
                v for t, v in zip(example.token_ids, example.values, strict=True) if t == SINK
            ]
            assert all(v == 0.0 for v in sink_values)


def test_encoding_a_slice_of_positions_at_a_time_changes_nothing(tiny_model, chunks):
    model, tokenizer = tiny_model
    sae = random_sae("topk", layer=1)
    runs = [
        mine_top_examples(
            collect_residuals(model, [1], chunks)[1],
            sae,
            chunks,
            [3, 9],
            tokenizer.all_special_ids,
            settings_for(MiningSettings, n_examples=5, max_latents=max_latents),
        )
        for max_latents in (2**25, 7 * 256)  # every position at once; 7 positions at a time
    ]
    assert torch.equal(runs[0].chunk, runs[1].chunk)
    torch.testing.assert_close(runs[0].values, runs[1].values)


def test_windows_clip_at_the_chunk_edges(tiny_model, chunks):
    model, tokenizer = tiny_model
    sae = random_sae("standard", layer=1)
    settings = settings_for(MiningSettings, n_examples=23, context_before=20, context_after=20)
    top = mine_top_examples(
        block_output(model, 1, chunks), sae, chunks, [3], tokenizer.all_special_ids, settings
    )
    examples = top_examples_by_feature(top, [3], tokenizer)[3]
    assert len(examples) >= 5  # the loop below checks each
    assert len(examples) == len({c.item() for c in top.chunk[0, : len(examples)]})
    for example, chunk in zip(examples, top.chunk[0, : len(examples)], strict=True):
        assert example.token_ids == chunks[chunk].tolist()  # the whole 16-token chunk
        assert example.values[0] == 0.0  # BOS


TEXT = """
The river that runs through the old town is slow and brown in the summer. Children sit on the
stone wall above the water and watch the boats go past. In the evening the light turns gold and
the swallows fly low over the surface, catching the insects that rise from the reeds. An old man
sells ice cream from a cart near the bridge, and the bell on his cart rings whenever a child runs
up with a coin. The town was built around the river, and most of the houses face the water.
In the spring the river rises and sometimes floods the lower streets, and the shopkeepers move
their goods to the upper floors. The council has talked for years about building a new wall, but
the money has never been found. People say the floods are part of the life of the town, and
they tell stories of the great flood of the last century, when the water reached the steps of
the church. The church stands on the hill at the centre of the town. Its tower can be seen from
the fields for miles around, and its bells ring every hour. On Sundays the square in front of
the church fills with people, and the market sellers set up their stalls under the trees. They
sell bread and cheese, apples and pears, honey from the farms in the hills, and flowers from the
gardens along the river. The baker comes early with his van, and by noon his bread is gone. The
school is on the far side of the square. It is an old building with tall windows and a yard
where the children play at break. The teachers know every family in the town, and many of them
taught the parents of the children they teach now. In the autumn the leaves fall from the trees
along the river and the paths turn red and yellow. The fishermen come back to the banks with
their long rods and their flasks of tea, and they sit for hours without a word. In the winter
the river is grey and cold, and mist lies over the water in the mornings until the sun burns it
away. Few visitors come in the winter, and the town is quiet. The inn by the bridge keeps a fire
burning all day, and the old men play cards at the table by the window while the rain falls on
the street outside.
"""


@pytest.mark.slow
@pytest.mark.parametrize("word", [" and", " river"])
def test_a_planted_token_feature_fires_on_its_token(embedded_model, word):
    """A latent reading the direction of `word` at layer 15 (its mean residual minus the
    mean residual) must pick exactly the contexts holding `word` and peak on it there;
    with its decoder along the word's unembedding, the input score counts those peaks."""
    model, tokenizer = embedded_model
    layer, width = 15, 16
    ids = tokenizer(" ".join(TEXT.split()), add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    chunks = torch.tensor(
        [[bos, *ids[i : i + width - 1]] for i in range(0, len(ids) - width, width - 1)]
    )
    token = tokenizer(word, add_special_tokens=False)["input_ids"][0]
    hidden = block_output(model, layer, chunks)
    keep = non_sink_positions(chunks, hidden, tokenizer.all_special_ids)
    mean = hidden[keep].mean(0)
    direction = hidden[keep & (chunks == token)].mean(0) - mean
    metadata = SAEMetadata(hook_name=f"model.layers.{layer}")
    sae = StandardSAE(StandardSAEConfig(d_in=576, d_sae=1, metadata=metadata))
    with torch.no_grad():
        sae.W_enc.copy_(direction.unsqueeze(1) / direction.norm())
        sae.b_enc.zero_()
        sae.b_dec.copy_(mean)
        sae.W_dec.copy_(model.get_output_embeddings().weight[token].unsqueeze(0))

    holding = set(torch.nonzero((chunks == token).any(1)).flatten().tolist())
    assert 5 <= len(holding) < len(chunks)
    settings = settings_for(
        MiningSettings, n_examples=len(holding), context_before=4, context_after=2
    )
    top = mine_top_examples(hidden, sae, chunks, [0], tokenizer.all_special_ids, settings)
    examples = top_examples_by_feature(top, [0], tokenizer)[0]
    assert set(top.chunk[0].tolist()) == holding
    assert [e.token_ids[e.max_token_index] for e in examples] == [token] * len(holding)
    assert [e.tokens[e.max_token_index] for e in examples] == [word.replace(" ", "Ġ")] * len(
        holding
    )

    lens_ids, probs, _ = logit_lens_topk(model, sae.W_dec, [0], 20)
    assert token in lens_ids[0].tolist()
    lens = logit_lens_frame(layer, [0], lens_ids, probs, tokenizer)
    activations = activations_frame(layer, {0: examples})
    scores = score_input(
        activations, lens, tokenizer, settings_for(InputScoreSettings, min_examples=5)
    )
    assert scores.row(0, named=True) == {
        "layer": layer,
        "feature": 0,
        "input_score": 1.0,
        "n_examples": len(holding),
        "n_hits": len(holding),
        "top_k": 20,
        "input_score_chance": None,
    }

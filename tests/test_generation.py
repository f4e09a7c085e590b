"""The batched steered sampler against one-row-at-a-time loops with the same random streams."""

import contextlib
from dataclasses import replace
from types import SimpleNamespace

import polars as pl
import pytest
import torch

from saesteer.gen_metrics import score_generations
from saesteer.generation import (
    SteeredRows,
    generate_grid,
    gumbel,
    sample_steered,
    sample_tokens,
    stop_tokens,
    top_k_candidates,
)
from saesteer.generations_table import GENERATIONS_SCHEMA
from saesteer.kv_cache import cache_keyword, returned_cache
from saesteer.logit_lens import logit_lens_frame, logit_lens_topk
from saesteer.sampling import SamplingSettings
from saesteer.seeds import row_seed
from saesteer.settings import settings_for
from saesteer.steering import SteeringTarget, steer_reference, steering_directions
from saesteer.tokenizer_files import token_texts
from tests.helpers import TINY_VOCAB, random_sae

# sample_steered pads with the tokenizer's pad id; the tiny models' rows pad with 0
PAD_ZERO = SimpleNamespace(pad_token_id=0, eos_token_id=None)


def steered(model, sae, layer, prompts, directions, factors, seeds, stops, settings):
    """sample_steered on block `layer` of `model`, steered by `sae`."""
    target = SteeringTarget(model, PAD_ZERO, sae, layer)
    return sample_steered(target, SteeredRows(prompts, directions, factors, seeds), stops, settings)


PROMPTS = [[1, 5, 9], [1, 40], [1, 7, 7, 7, 30], [1, 100, 3, 4]]


def reference_sample(model, prompt, seed, settings, stops, intervention=None):
    """One row, a KV cache, `intervention` (a context manager) around every forward."""
    generator = torch.Generator().manual_seed(seed)
    ids, cache, out = torch.tensor([prompt]), None, []
    with intervention or contextlib.nullcontext():
        for _ in range(settings.max_new_tokens):
            output = model(ids, use_cache=True, **{cache_keyword(model): cache})
            cache = returned_cache(output)
            logits = output.logits[0, -1].double() / settings.temperature
            kept = torch.arange(logits.shape[-1])  # the candidates, in ascending id order
            if settings.top_k is not None:
                kth = logits.sort(descending=True).values[settings.top_k - 1]
                kept = (logits >= kth).nonzero().flatten()
            noise = gumbel(torch.rand(len(kept), generator=generator))
            token = kept[(logits[kept] + noise).argmax()].item()
            out.append(token)
            if stops[token]:
                break
            ids = torch.tensor([[token]])
    return out


@pytest.fixture(scope="module")
def stops():
    mask = torch.zeros(TINY_VOCAB, dtype=torch.bool)
    mask[[2, 11, 17, 23]] = True  # </s> and three words, so rows stop at different steps
    return mask


def test_factor_zero_is_unsteered_sampling(any_tiny_model, stops):
    model, _ = any_tiny_model
    sae = random_sae("topk", layer=2)
    prompts = PROMPTS * 2
    settings = settings_for(SamplingSettings, max_new_tokens=16, batch_size=8)
    seeds = [row_seed(0, i) for i in range(len(prompts))]
    directions = steering_directions(sae, list(range(len(prompts))))
    got = steered(
        model, sae, 2, prompts, directions, torch.zeros(len(prompts)), seeds, stops, settings
    )
    expected = [
        reference_sample(model, p, s, settings, stops) for p, s in zip(prompts, seeds, strict=True)
    ]
    assert got == expected
    assert any(len(g) < 16 for g in got) and any(len(g) == 16 for g in got)


@pytest.mark.parametrize("kind", ["standard", "topk", "jumprelu"])
def test_steered_batch_equals_one_row_at_a_time_with_the_public_form(any_tiny_model, stops, kind):
    model, _ = any_tiny_model
    sae = random_sae(kind, layer=1)
    features, factors = [5, 5, 17, 200], [0.5, 4.0, 2.0, 8.0]
    settings = settings_for(SamplingSettings, max_new_tokens=10, batch_size=3)  # two batches
    seeds = [row_seed(1, i) for i in range(4)]
    got = steered(
        model,
        sae,
        1,
        PROMPTS,
        steering_directions(sae, features),
        torch.tensor(factors),
        seeds,
        stops,
        settings,
    )
    expected = [
        reference_sample(model, p, s, settings, stops, steer_reference(model, sae, 1, f, c))
        for p, s, f, c in zip(PROMPTS, seeds, features, factors, strict=True)
    ]
    assert got == expected
    unsteered = steered(
        model,
        sae,
        1,
        PROMPTS,
        steering_directions(sae, features),
        torch.zeros(4),
        seeds,
        stops,
        settings,
    )
    assert unsteered != got  # the steering changed something


def test_a_rows_text_does_not_depend_on_its_batch(any_tiny_model, stops):
    model, _ = any_tiny_model
    sae = random_sae("standard", layer=3)
    prompts = PROMPTS * 3
    seeds = [row_seed(7, i) for i in range(len(prompts))]
    directions = steering_directions(sae, list(range(len(prompts))))
    factors = torch.linspace(0, 6, len(prompts))
    runs = [
        steered(
            model,
            sae,
            3,
            prompts,
            directions,
            factors,
            seeds,
            stops,
            settings_for(SamplingSettings, max_new_tokens=8, batch_size=size),
        )
        for size in (1, 5, 12)
    ]
    assert runs[0] == runs[1] == runs[2]


def test_rows_stop_after_their_stop_token(any_tiny_model, stops):
    model, _ = any_tiny_model
    sae = random_sae("standard", layer=0)
    seeds = [row_seed(3, i) for i in range(16)]
    got = steered(
        model,
        sae,
        0,
        PROMPTS * 4,
        steering_directions(sae, [0] * 16),
        torch.zeros(16),
        seeds,
        stops,
        settings_for(SamplingSettings, max_new_tokens=15, batch_size=16),
    )
    for row in got:
        assert not any(stops[t] for t in row[:-1])
        assert stops[row[-1]] or len(row) == 15


def _step_logits(model, prompt, tokens):
    """The unsteered next-token logits before each of `tokens`, from one full forward."""
    ids = torch.tensor([prompt + tokens])
    return model(ids).logits[0, len(prompt) - 1 : len(prompt) - 1 + len(tokens)]


@pytest.mark.parametrize("k", [1, 3])
def test_no_sampled_token_falls_outside_the_steps_top_k(any_tiny_model, stops, k):
    model, _ = any_tiny_model
    sae = random_sae("standard", layer=0)
    prompts = PROMPTS * 4
    seeds = [row_seed(5, i) for i in range(len(prompts))]

    def sample(top_k):
        settings = settings_for(
            SamplingSettings, temperature=5.0, top_k=top_k, max_new_tokens=10, batch_size=6
        )
        directions = steering_directions(sae, [0] * len(prompts))
        zeros = torch.zeros(len(prompts))
        return steered(model, sae, 0, prompts, directions, zeros, seeds, stops, settings)

    got = sample(k)
    with torch.no_grad():
        for prompt, tokens in zip(prompts, got, strict=True):
            logits = _step_logits(model, prompt, tokens)
            for step, token in enumerate(tokens):
                ranked = logits[step].argsort(descending=True).tolist()
                assert token in ranked[:k], (prompt, step, token, ranked[:k])
    # A hot temperature over the full vocabulary leaves the top 3 often; the test can fail.
    wide = sample(None)
    with torch.no_grad():
        outside = sum(
            token not in _step_logits(model, p, t)[step].argsort(descending=True)[:k].tolist()
            for p, t in zip(prompts, wide, strict=True)
            for step, token in enumerate(t)
        )
    assert outside > 0


def test_top_k_none_is_the_full_vocabulary_bit_for_bit(any_tiny_model, stops):
    """`top_k: null` is the sampler as it was before top-k existed: Gumbel-max over every
    token; a k as large as the vocabulary is the same thing."""
    model, _ = any_tiny_model
    sae = random_sae("topk", layer=1)
    seeds = [row_seed(9, i) for i in range(len(PROMPTS))]
    directions = steering_directions(sae, [4, 8, 15, 16])
    factors = torch.tensor([0.0, 2.0, 4.0, 8.0])

    def run(top_k):
        settings = settings_for(SamplingSettings, top_k=top_k, max_new_tokens=12, batch_size=3)
        return steered(model, sae, 1, PROMPTS, directions, factors, seeds, stops, settings)

    full = settings_for(SamplingSettings, top_k=None, max_new_tokens=12)
    expected = [
        reference_sample(model, p, s, full, stops, steer_reference(model, sae, 1, f, c))
        for p, s, f, c in zip(PROMPTS, seeds, [4, 8, 15, 16], factors.tolist(), strict=True)
    ]
    assert run(None) == expected == run(TINY_VOCAB)
    assert settings_for(SamplingSettings).top_k == 50


def test_top_k_candidates_keep_ties_and_draw_per_row():
    """Ties at the k-th logit widen that row only; a row's draw depends on its own stream."""
    logits = torch.tensor(
        [[0.0, 3.0, 1.0, 1.0, 1.0, -2.0], [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]], dtype=torch.float32
    )
    ids, values, widths = top_k_candidates(logits, 2)
    assert widths == [4, 2]
    assert ids[0].tolist() == [1, 2, 3, 4] and ids[1, :2].tolist() == [0, 1]
    assert values[1, 2:].isinf().all() and (values[1, 2:] < 0).all()
    untied = top_k_candidates(logits[1:], 3)
    assert untied[0].tolist() == [[0, 1, 2]] and untied[2] == [3]

    def draw(batch, seed):
        generators = [torch.Generator().manual_seed(seed + r) for r in range(len(batch))]
        settings = settings_for(SamplingSettings, temperature=1.0, top_k=2)
        return [sample_tokens(batch, generators, settings).tolist() for _ in range(30)]

    both, alone = draw(logits, 0), draw(logits[:1], 0)
    assert [b[0] for b in both] == [a[0] for a in alone]
    assert {b[0] for b in both} == {1, 2, 3, 4} and {b[1] for b in both} == {0, 1}


def test_token_texts_equal_decoding_each_id_alone(embedded_model):
    _, tokenizer = embedded_model
    ids = list(range(0, len(tokenizer), 97)) + [tokenizer.eos_token_id]
    assert token_texts(tokenizer, ids) == [tokenizer.decode([i]) for i in ids]


def test_stop_tokens_hold_the_stop_string_or_end_the_sequence(embedded_model):
    _, tokenizer = embedded_model
    stops = stop_tokens(tokenizer, ".", len(tokenizer))
    assert stops[tokenizer.convert_tokens_to_ids(".")] and stops[tokenizer.eos_token_id]
    assert not stops[tokenizer.convert_tokens_to_ids("Ġthe")]
    assert all(
        "." in tokenizer.decode([i])
        for i in torch.nonzero(stops).flatten()[:50].tolist()
        if i != tokenizer.eos_token_id
    )


GRID_PREFIXES = ["w1 w2", "w3", "w4 w5 w6"]


def test_the_grid_is_every_feature_factor_and_prefix_reproducibly(tiny_model):
    model, tokenizer = tiny_model
    sae = random_sae("topk", layer=2)
    settings = settings_for(SamplingSettings, max_new_tokens=6, batch_size=5)
    settings = replace(settings, seed=11)
    args = (SteeringTarget(model, tokenizer, sae, 2), [3, 17], [0.0, 2.0, 8.0], GRID_PREFIXES)
    frame = generate_grid(*args, settings)
    assert frame.columns == list(GENERATIONS_SCHEMA)
    assert frame.select("feature", "factor", "prefix_id").rows() == [
        (f, c, p) for f in (3, 17) for c in (0.0, 2.0, 8.0) for p in range(3)
    ]
    assert (frame["text"] == frame["prefix"] + frame["continuation"]).all()
    assert frame["n_tokens"].is_between(1, 6).all() and set(frame["source"]) == {"sampled"}
    # Factor 0 is no steering: one baseline per prefix, shared by every feature.
    baseline = frame.filter(pl.col("factor") == 0)
    assert (
        baseline.filter(pl.col("feature") == 3)
        .drop("feature")
        .equals(baseline.filter(pl.col("feature") == 17).drop("feature"))
    )
    assert frame.filter(pl.col("factor") > 0)["seed"].n_unique() == 12
    # Same seed, same Parquet; another batch size too; another seed differs.
    assert generate_grid(*args, settings).equals(frame)
    assert generate_grid(*args, replace(settings, batch_size=64)).equals(frame)
    other = generate_grid(*args, replace(settings, seed=12))
    assert not other["continuation"].equals(frame["continuation"])


@pytest.mark.slow
def test_a_strongly_steered_output_feature_raises_gen_success(embedded_model):
    """On the real SmolLM2: a latent whose decoder row is the unembedding of " ocean" has
    " ocean" first in its logit lens, and steering it hard fills the continuations with it."""
    model, tokenizer = embedded_model
    sae = random_sae("standard", layer=20, d_in=576, d_sae=64)
    word = tokenizer.convert_tokens_to_ids("Ġocean")
    with torch.no_grad():
        sae.W_dec[9] = model.get_output_embeddings().weight[word]
    ids, probs, _ = logit_lens_topk(model, sae.W_dec, [9], 20)
    assert ids[0, 0] == word
    prefixes = ["I believe that", "She saw a", "Then the man said:"]
    frame = generate_grid(
        SteeringTarget(model, tokenizer, sae, 20),
        [9],
        [0.0, 8.0],
        prefixes,
        settings_for(SamplingSettings, max_new_tokens=10, seed=0),
    )
    lens = logit_lens_frame(20, [9], ids, probs, tokenizer)
    metrics = score_generations(frame, lens, tokenizer, model, tokenizer, "smollm2")
    gen_success = dict(metrics.select("factor", "gen_success_1").iter_rows())
    assert gen_success[0.0] < 1 and gen_success[8.0] >= 8
    steered = frame.filter(pl.col("factor") == 8)["continuation"]
    assert steered.str.count_matches(" ocean").min() >= 8

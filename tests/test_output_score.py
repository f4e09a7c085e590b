import polars as pl
import pytest
import torch

from saesteer.logit_lens import logit_lens_topk
from saesteer.output_score import (
    OutputScoreSettings,
    score_from_probs,
    score_output,
    score_prompt_fast,
    score_prompt_reference,
)
from saesteer.prompts import PREFIXES, encode_prompt
from saesteer.settings import settings_for
from tests.helpers import TINY_LAYERS, random_sae


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return tiny_model


def _lens(model, sae, features, k=5):
    return logit_lens_topk(model, sae.W_dec, features, k)[0]


def test_score_formula_by_hand():
    probs = torch.tensor([[0.1, 0.4, 0.2, 0.3], [0.25, 0.25, 0.5, 0.0]])
    tokens = torch.tensor([[0, 2], [1, 3]])
    out = score_from_probs(probs, tokens)
    # Row 0: best token 2 (p 0.2) has 0.4 and 0.3 above it. Row 1: token 1 ties with token 0
    # for second place, and a tie shares the best position.
    assert out["min_rank"].tolist() == [2, 1]
    assert out["max_prob"].tolist() == pytest.approx([0.2, 0.25])
    assert out["score"].tolist() == pytest.approx([(1 - 2 / 4) * 0.2, (1 - 1 / 4) * 0.25])


@pytest.mark.parametrize("kind", ["standard", "topk", "jumprelu"])
@pytest.mark.parametrize("layer", range(TINY_LAYERS))
def test_fast_path_equals_the_reference_loop(any_tiny_model, kind, layer):
    model, tokenizer = any_tiny_model
    sae = random_sae(kind, layer=layer, seed=layer)
    features = [0, 3, 17, 64, 128, 255, 31]
    tokens = _lens(model, sae, features)
    prompt = encode_prompt(tokenizer, "w5 w9 w20 w3")
    fast = score_prompt_fast(model, sae, layer, prompt, features, tokens, 10.0, 3)
    slow = score_prompt_reference(model, sae, layer, prompt, features, tokens, 10.0, 1)
    _assert_same_scores(fast, slow)


def _assert_same_scores(fast, slow, rank_slack=0):
    """Equal to 1e-5; ranks equal, or within `rank_slack` where a large vocabulary makes a
    near-tie with another token likely (the score moves by max_prob / |V| per place)."""
    for key in ("score", "max_prob", "unsteered"):
        assert (fast[key] - slow[key]).abs().max() <= 1e-5, key
    assert (fast["min_rank"] - slow["min_rank"]).abs().max() <= rank_slack
    assert (fast["score"] - fast["unsteered"]).abs().max() > 1e-3  # the steering did something


def _tiny_model(architecture: str):
    """Other block layouts: Gemma-2 (sliding window shorter than the prompt, embedding
    scale, soft-capping), GPT-2 and GPT-NeoX."""
    import transformers as tf

    sizes = {"vocab_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4}
    configs = {
        "gemma2": lambda: tf.Gemma2ForCausalLM(
            tf.Gemma2Config(
                **sizes,
                hidden_size=64,
                intermediate_size=128,
                num_key_value_heads=2,
                head_dim=16,
                sliding_window=3,
            )
        ),
        "gpt2": lambda: tf.GPT2LMHeadModel(
            tf.GPT2Config(vocab_size=128, n_embd=64, n_layer=4, n_head=4, n_positions=64)
        ),
        "gpt_neox": lambda: tf.GPTNeoXForCausalLM(
            tf.GPTNeoXConfig(**sizes, hidden_size=64, intermediate_size=128)
        ),
    }
    torch.manual_seed(0)
    return configs[architecture]().eval().requires_grad_(False)


@pytest.mark.parametrize("architecture", ["gemma2", "gpt2", "gpt_neox"])
def test_fast_path_on_other_architectures(architecture):
    model = _tiny_model(architecture)
    prompt = [1, 5, 9, 20, 7, 33]
    features = [3, 50, 99, 200]
    for layer in (0, 2, 3):
        sae = random_sae("topk", layer=layer, seed=layer)
        tokens = _lens(model, sae, features)
        fast = score_prompt_fast(model, sae, layer, prompt, features, tokens, 10.0, 3)
        slow = score_prompt_reference(model, sae, layer, prompt, features, tokens, 10.0, 1)
        _assert_same_scores(fast, slow)


def test_batch_size_does_not_change_scores(tiny):
    model, tokenizer = tiny
    sae = random_sae("topk", layer=1)
    features = list(range(0, 256, 9))
    tokens, prompt = _lens(model, sae, features), encode_prompt(tokenizer, "w1 w2")
    runs = [
        score_prompt_fast(model, sae, 1, prompt, features, tokens, 10.0, b) for b in (1, 7, 100)
    ]
    for run in runs[1:]:
        torch.testing.assert_close(run["score"], runs[0]["score"], atol=1e-6, rtol=1e-5)


def test_a_one_token_prompt_has_no_prefix_to_cache(tiny):
    model, tokenizer = tiny
    sae = random_sae("standard", layer=2)
    tokens, prompt = _lens(model, sae, [1, 2]), encode_prompt(tokenizer, "")
    assert prompt == [tokenizer.bos_token_id]
    fast = score_prompt_fast(model, sae, 2, prompt, [1, 2], tokens, 10.0, 8)
    slow = score_prompt_reference(model, sae, 2, prompt, [1, 2], tokens, 10.0, 1)
    torch.testing.assert_close(fast["score"], slow["score"], atol=1e-5, rtol=0, check_dtype=False)


def test_a_feature_along_a_tokens_unembedding_ranks_it_first(tiny):
    """At the last block, a decoder row along token 7's unembedding, amplified, makes token 7
    the most likely next token: min_rank 0, and the best score of the features."""
    model, tokenizer = tiny
    sae = random_sae("standard", layer=TINY_LAYERS - 1)
    with torch.no_grad():
        sae.W_dec[9] = 5 * model.get_output_embeddings().weight[7]
    features = [9, 10, 11, 12]
    tokens = _lens(model, sae, features)
    assert tokens[0, 0] == 7
    settings = settings_for(OutputScoreSettings, top_k=5, factor=50.0)
    scores, _ = score_output(model, tokenizer, sae, TINY_LAYERS - 1, features, tokens, settings)
    planted = scores.row(0, named=True)
    assert planted["min_rank"] == 0
    assert planted["output_score"] == scores["output_score"].max()


def test_factor_zero_gives_the_unsteered_score(tiny):
    model, tokenizer = tiny
    sae = random_sae("jumprelu", layer=1)
    features = [2, 40, 90]
    settings = settings_for(OutputScoreSettings, prompt="w3 w4", factor=0.0, top_k=5)
    scores, _ = score_output(
        model, tokenizer, sae, 1, features, _lens(model, sae, features), settings
    )
    plain = torch.softmax(model(torch.tensor([[1, 6, 7]])).logits[0, -1], -1)
    lens = _lens(model, sae, features)
    for row, feature_tokens in zip(scores.iter_rows(named=True), lens, strict=True):
        best = plain[feature_tokens].max()
        expected = (1 - (plain > best).sum().item() / len(plain)) * best.item()
        assert row["steered_score"] == pytest.approx(expected, abs=1e-7)
        assert row["unsteered_score"] == pytest.approx(expected, abs=1e-7)


def test_robustness_prompts_and_the_baseline_subtracted_variant(tiny):
    model, tokenizer = tiny
    sae = random_sae("standard", layer=2)
    features = [5, 6, 7]
    tokens = _lens(model, sae, features)
    settings = settings_for(
        OutputScoreSettings,
        prompt="w1",
        top_k=5,
        robustness_prompts=["w2 w3", "w4"],
        subtract_unsteered=True,
    )
    scores, by_prompt = score_output(model, tokenizer, sae, 2, features, tokens, settings)
    assert by_prompt.height == 3 * 3
    assert by_prompt["prompt"].unique(maintain_order=True).to_list() == ["w1", "w2 w3", "w4"]
    for row in scores.iter_rows(named=True):
        rows = by_prompt.filter(pl.col("feature") == row["feature"]).sort("prompt_id")
        assert row["output_score"] == pytest.approx(row["steered_score"] - row["unsteered_score"])
        assert row["output_score"] == rows["output_score"][0]
        assert row["robustness_mean"] == pytest.approx(rows["output_score"][1:].mean())
        assert row["n_robustness_prompts"] == 2
        assert row["variant"] == "steered_minus_unsteered" and row["prompt"] == "w1"
    single = settings_for(OutputScoreSettings, prompt="w2 w3", top_k=5, subtract_unsteered=True)
    alone, _ = score_output(model, tokenizer, sae, 2, features, tokens, single)
    expected = by_prompt.filter(pl.col("prompt_id") == 1)["output_score"]
    assert alone["output_score"].to_list() == pytest.approx(expected.to_list(), abs=1e-6)


def test_named_prompt_list_and_bad_settings():
    assert settings_for(OutputScoreSettings, robustness_prompts="prefixes").prompts()[1:] == list(
        PREFIXES
    )
    with pytest.raises(ValueError, match="robustness_prompts: unknown list 'nope'"):
        settings_for(OutputScoreSettings, robustness_prompts="nope").prompts()
    with pytest.raises(ValueError, match="output_score.method: 'quick'"):
        score_output(
            None,
            None,
            None,
            0,
            [],
            torch.zeros(0, 5),
            settings_for(OutputScoreSettings, method="quick"),
        )


@pytest.mark.slow
@pytest.mark.parametrize("layer", [2, 27])
def test_fast_equals_reference_on_the_embedded_model(embedded_model, layer):
    model, tokenizer = embedded_model
    sae = random_sae("topk", layer=layer, d_in=576, d_sae=1024, seed=layer)
    features = list(range(5, 1024, 97))
    tokens = _lens(model, sae, features, 20)
    prompt = encode_prompt(tokenizer, "From my experience,")
    fast = score_prompt_fast(model, sae, layer, prompt, features, tokens, 10.0, 4)
    slow = score_prompt_reference(model, sae, layer, prompt, features, tokens, 10.0, 1)
    _assert_same_scores(fast, slow, rank_slack=1)


def test_one_distribution_scores_equal_a_pass_per_row():
    """The unsteered score (one distribution sorted once, ranks by binary search) equals the
    row-by-row comparison, ties included."""
    from saesteer.output_score import score_from_one_distribution

    generator = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(500, generator=generator), dim=-1)
    probs[10:20] = probs[5]  # ties share the best position
    tokens = torch.randint(0, 500, (64, 7), generator=generator)
    tokens[0] = torch.tensor([12, 15, 19, 11, 13, 14, 16])
    expected = score_from_probs(probs.expand(64, -1).clone(), tokens)["score"]
    assert torch.equal(score_from_one_distribution(probs, tokens), expected)


def test_one_prompt_pass_crops_a_sliding_window_cache(any_tiny_model):
    """A prompt shorter than the sliding window takes the one-pass path, whose cache is
    cropped by its last token; the reference loop agrees."""
    from saesteer.output_score import prompt_pass

    model, _ = any_tiny_model
    window = getattr(model.config.get_text_config(), "sliding_window", None)
    prompt = [5, 9] if window is None or window > 2 else [5]
    sae = random_sae("topk", layer=1, seed=1)
    features = [0, 3, 17, 64]
    tokens = _lens(model, sae, features)
    ids = torch.tensor([prompt])
    cache, _ = prompt_pass(model, 1, ids)
    assert cache.get_seq_length() == len(prompt) - 1
    fast = score_prompt_fast(model, sae, 1, prompt, features, tokens, 10.0, 2)
    slow = score_prompt_reference(model, sae, 1, prompt, features, tokens, 10.0, 1)
    _assert_same_scores(fast, slow)

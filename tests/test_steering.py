import pytest
import torch

from saesteer.errors import SaeError, UsageError
from saesteer.hooks import edit_block_output
from saesteer.steering import steer, steer_reference, steering_directions
from tests.helpers import random_sae

KINDS = ["standard", "topk", "jumprelu"]


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model[0]


@pytest.fixture(scope="module")
def prompts():
    generator = torch.Generator().manual_seed(3)
    tokens = torch.randint(3, 128, (3, 7), generator=generator)
    tokens[:, 0] = 1
    return tokens


@pytest.mark.parametrize("kind", KINDS)
def test_additive_form_equals_the_public_codes_decode_plus_error(model, prompts, kind):
    """Row by row, a batch steered with per-row features and factors matches the public
    code's decode(a + s*a_max*e_i) + (h - decode(encode(h))), run one sequence at a time."""
    sae = random_sae(kind)
    features, factors = [5, 77, 200], [10.0, 0.8, 3.0]
    directions = steering_directions(sae, features)
    with steer(model, sae, 1, directions, torch.tensor(factors)):
        batched = model(prompts).logits
    for row, (feature, factor) in enumerate(zip(features, factors, strict=True)):
        with steer_reference(model, sae, 1, feature, factor):
            single = model(prompts[row : row + 1]).logits[0]
        torch.testing.assert_close(batched[row], single, atol=1e-5, rtol=1e-5)
    assert (batched[:, -1] - model(prompts).logits[:, -1]).abs().max() > 1e-3  # it steered


def test_effective_decoder_rows():
    standard, topk = random_sae("standard"), random_sae("topk")
    torch.testing.assert_close(steering_directions(standard, [3, 9]), standard.W_dec[[3, 9]])
    rows = topk.W_dec[[3, 9]]
    expected = rows / rows.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(steering_directions(topk, [3, 9]), expected)


def test_only_the_last_position_of_block_L_changes(model, prompts):
    sae = random_sae("standard")
    seen = {}

    def record(name):
        return lambda hidden: seen.setdefault(name, hidden.clone())

    for name, steering in [("plain", None), ("steered", 10.0)]:
        with edit_block_output(model, 0, record(f"{name}0")):
            if steering is None:
                with edit_block_output(model, 1, record(f"{name}1")):
                    model(prompts)
            else:
                with (
                    steer(model, sae, 1, steering_directions(sae, [4]), steering),
                    edit_block_output(model, 1, record(f"{name}1")),
                ):
                    model(prompts)
    torch.testing.assert_close(seen["steered0"], seen["plain0"])
    torch.testing.assert_close(seen["steered1"][:, :-1], seen["plain1"][:, :-1])
    assert not torch.allclose(seen["steered1"][:, -1], seen["plain1"][:, -1])


def test_a_max_is_per_sequence(model, prompts):
    sae = random_sae("jumprelu")
    direction = steering_directions(sae, [11])
    with steer(model, sae, 2, direction, 4.0):
        together = model(prompts).logits
    for row in range(len(prompts)):
        with steer(model, sae, 2, direction, 4.0):
            alone = model(prompts[row : row + 1]).logits[0]
        torch.testing.assert_close(together[row], alone, atol=1e-5, rtol=1e-5)


def test_factor_zero_is_the_unsteered_model(model, prompts):
    sae = random_sae("topk")
    with steer(model, sae, 3, steering_directions(sae, [1]), 0.0):
        steered = model(prompts).logits
    torch.testing.assert_close(steered, model(prompts).logits)


def test_mismatched_rows_are_refused(model, prompts):
    sae = random_sae("standard")
    with (
        steer(model, sae, 1, steering_directions(sae, [1, 2]), 1.0),
        pytest.raises(UsageError, match="2 steering directions for a batch of 3 rows"),
    ):
        model(prompts)


def test_stateful_normalization_is_refused():
    sae = random_sae("standard")
    sae.cfg.normalize_activations = "layer_norm"
    with pytest.raises(SaeError, match="normalize_activations='layer_norm'"):
        steering_directions(sae, [0])

import pytest
import torch

from saesteer.hooks import edit_block_output
from saesteer.residuals import collect_residuals
from saesteer.sae_metrics import sae_metrics
from tests.helpers import TINY_D_MODEL, save_sae

SPECIAL = [0, 1, 2]  # <unk>, <s>, </s> of the tiny tokenizer


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model[0]


@pytest.fixture(scope="module")
def tokens():
    generator = torch.Generator().manual_seed(0)
    chunks = torch.randint(3, 128, (6, 12), generator=generator)
    chunks[:, 0] = 1
    return chunks


def identity_sae(tmp_path, decoder_scale=1.0):
    """ReLU SAE with W_enc = [I, -I], W_dec = s[I; -I]: decode(encode(x)) = s x exactly."""
    sae = save_sae(tmp_path / "sae", layer=1, d_sae=2 * TINY_D_MODEL)
    eye = torch.eye(TINY_D_MODEL)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(decoder_scale * torch.cat([eye, -eye], dim=0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae.eval()


def _metrics(model, sae, tokens):
    """The metrics at layer 1 from the run's residual cache."""
    residuals = collect_residuals(model, [1], tokens)[1]
    return sae_metrics(model, sae, 1, tokens, residuals, SPECIAL, batch_size=4)


def _residuals(model, tokens):
    seen = []
    with edit_block_output(model, 1, lambda h: seen.append(h[:, 1:].reshape(-1, h.shape[-1]))):
        model(tokens)
    return seen[0].double()


def test_identity_sae_is_perfect(model, tokens, tmp_path):
    metrics = _metrics(model, identity_sae(tmp_path), tokens)
    assert metrics["variance_explained"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["ce_with_sae"] == pytest.approx(metrics["ce_clean"], abs=1e-5)
    assert metrics["ce_loss_recovered"] == pytest.approx(1.0, abs=1e-4)
    assert metrics["l0"] == pytest.approx(TINY_D_MODEL)  # one of x_j, -x_j is positive
    assert metrics["dead_fraction"] == 0.0
    assert metrics["n_tokens"] == 6 * 11


def test_half_scale_decoder_against_a_hand_computation(model, tokens, tmp_path):
    metrics = _metrics(model, identity_sae(tmp_path, 0.5), tokens)
    h = _residuals(model, tokens)
    expected = 1 - (0.25 * h.pow(2).sum()) / (h - h.mean(0)).pow(2).sum()
    assert metrics["variance_explained"] == pytest.approx(expected.item(), rel=1e-6)
    assert 0 < metrics["ce_loss_recovered"] < 1


def test_zero_decoder_recovers_nothing(model, tokens, tmp_path):
    metrics = _metrics(model, identity_sae(tmp_path, 0.0), tokens)
    assert metrics["ce_with_sae"] == pytest.approx(metrics["ce_zero_ablation"], abs=1e-6)
    assert metrics["ce_loss_recovered"] == pytest.approx(0.0, abs=1e-6)


def test_dead_counts_the_training_tokens_and_silent_the_held_out(model, tokens, tmp_path):
    sae = identity_sae(tmp_path)
    residuals = collect_residuals(model, [1], tokens)[1]
    # Training residuals with no negative coordinate fire only the +I half of [I, -I].
    positive = sae_metrics(
        model, sae, 1, tokens, residuals, SPECIAL, batch_size=4, train=(tokens, residuals.abs())
    )
    assert positive["dead_fraction"] == 0.5
    assert positive["silent_fraction"] == 0.0
    assert positive["dead_tokens"] == positive["n_tokens"]
    zero = sae_metrics(
        model, sae, 1, tokens, residuals, SPECIAL, batch_size=4, train=(tokens, 0 * residuals)
    )
    assert zero["dead_fraction"] == 1.0
    assert zero["variance_explained"] == pytest.approx(1.0, abs=1e-6)  # still held-out's

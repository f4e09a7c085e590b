import polars as pl
import pytest
import torch

from saesteer.logit_lens import LOGIT_LENS_SCHEMA, logit_lens_frame, logit_lens_topk
from saesteer.models import final_logits, final_norm, load_model
from tests.helpers import reference_topk, save_sae


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(tiny_model_dir, device="cpu")


def test_batched_logit_lens_equals_a_model_forward_per_feature(any_tiny_model, tmp_path):
    """On Gemma-2 the model's own forward soft-caps its logits, so the lens must too."""
    model, _ = any_tiny_model
    sae = save_sae(tmp_path / "sae", layer=1)
    features = [0, 5, 17, 200]
    ids, probs, logits = logit_lens_topk(model, sae.W_dec.detach(), features, top_k=7, batch_size=3)
    # raw logits and probabilities agree: log-probability differences are logit differences
    gaps = probs.double().log() - probs.double().log()[:, :1]
    torch.testing.assert_close(gaps, (logits - logits[:, :1]).double(), atol=1e-4, rtol=1e-4)
    uncapped = []
    for row, feature in enumerate(features):
        ref = reference_topk(model, sae.W_dec[feature].detach(), 7)
        assert ids[row].tolist() == ref.indices.tolist()
        torch.testing.assert_close(probs[row], ref.values, atol=1e-6, rtol=1e-5)
        direction = sae.W_dec[feature].detach()
        plain = model.get_output_embeddings()(final_norm(model)(direction))
        uncapped.append(torch.softmax(plain, -1).topk(7).values)
    gap = (torch.stack(uncapped) - probs).abs().max()
    if getattr(model.config.get_text_config(), "final_logit_softcapping", None):
        assert gap > 1e-3  # without the cap this test would fail
    else:
        assert gap < 1e-6


def test_planted_unembedding_direction_is_its_own_top_token(tiny):
    model, _ = tiny
    unembed = model.get_output_embeddings().weight.detach()
    tokens = [5, 40, 77, 120]
    w_dec = torch.randn(10, unembed.shape[1])
    w_dec[[1, 2, 3, 4]] = 3.0 * unembed[tokens]
    ids, probs, _ = logit_lens_topk(model, w_dec, [1, 2, 3, 4], top_k=3)
    assert ids[:, 0].tolist() == tokens
    assert (probs[:, :-1] >= probs[:, 1:]).all()


def test_frame_has_the_promised_schema(tiny):
    model, tokenizer = tiny
    w_dec = torch.randn(4, model.config.hidden_size)
    ids, probs, logits = logit_lens_topk(model, w_dec, [2, 0], top_k=4)
    frame = logit_lens_frame(9, [2, 0], ids, probs, tokenizer, logits)
    assert dict(frame.schema) == LOGIT_LENS_SCHEMA
    assert frame["logit"].to_list() == logits.reshape(-1).tolist()
    assert logit_lens_frame(9, [2, 0], ids, probs, tokenizer)["logit"].null_count() == 8
    assert frame.height == 8
    assert frame["rank"].to_list() == [0, 1, 2, 3] * 2
    assert frame["feature"].to_list() == [2] * 4 + [0] * 4
    assert frame["token"][0] == tokenizer.decode([ids[0, 0].item()])
    assert frame.filter(pl.col("feature") == 2)["prob"].is_sorted(descending=True)


def test_the_lowest_logits_equal_a_model_forward_per_feature(any_tiny_model, tmp_path):
    """Negative logits: the k lowest of each decoder row's logits, lowest first, as the
    model's own final norm and unembedding (soft-capped where the model caps) give them."""
    model, _ = any_tiny_model
    sae = save_sae(tmp_path / "sae", layer=1)
    features = [3, 11, 40]
    ids, probs, logits = logit_lens_topk(
        model, sae.W_dec.detach(), features, top_k=5, batch_size=2, lowest=True
    )
    top_ids, *_ = logit_lens_topk(model, sae.W_dec.detach(), features, top_k=5)
    for row, feature in enumerate(features):
        reference = final_logits(model, sae.W_dec[feature].detach()[None])[0].float()
        low = reference.sort().indices[:5]
        assert ids[row].tolist() == low.tolist()
        torch.testing.assert_close(logits[row], reference[low])
        torch.testing.assert_close(probs[row], torch.softmax(reference, -1)[low])
        assert not set(ids[row].tolist()) & set(top_ids[row].tolist())
    assert (logits[:, :-1] <= logits[:, 1:]).all()

import pytest
import torch

from saesteer.corpus import build_documents, tokenize_documents
from saesteer.errors import ConfigError
from saesteer.models import load_model
from saesteer.residuals import collect_residuals
from saesteer.sae_metrics import sae_metrics
from saesteer.settings import settings_for
from saesteer.train import TrainSettings, train_sae


@pytest.fixture(scope="module")
def chunks(tiny_model_dir, tmp_path_factory):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    generator = torch.Generator().manual_seed(0)
    # A tiny "language": words drawn with a skewed distribution, so latents have structure.
    words = torch.multinomial(1 / torch.arange(1, 101).float(), 12000, True, generator=generator)
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text(
        "\n\n".join(" ".join(f"w{w}" for w in words[i : i + 300]) for i in range(0, 12000, 300))
    )
    docs = build_documents([], [str(path)], min_chars=10)
    return tokenize_documents(docs, tokenizer, context_size=32, heldout_fraction=0.2)


def test_trained_sae_reloads_and_beats_zero(tiny_model_dir, chunks, tmp_path):
    from sae_lens import SAE

    train = torch.tensor(chunks.filter(chunks["split"] == "train")["input_ids"].to_list())
    heldout = torch.tensor(chunks.filter(chunks["split"] == "heldout")["input_ids"].to_list())
    settings = settings_for(
        TrainSettings,
        d_sae=128,
        k=8,
        activation_tokens=5000,
        training_tokens=30_000,
        batch_size_tokens=256,
    )
    model, _ = load_model(tiny_model_dir, device="cpu")
    cached = collect_residuals(model, [2], train)[2]
    out = train_sae(cached, train.numpy(), [0, 1, 2], 2, settings, tmp_path / "layer_2")
    names = ["cfg.json", "sae_weights.safetensors"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == names
    # Snakemake dates the directory by its weights (`train.date_by_weights`)
    assert (out / ".snakemake_timestamp").resolve() == (out / "sae_weights.safetensors").resolve()
    sae = SAE.load_from_disk(out)
    assert sae.cfg.metadata.hook_name == "model.layers.2"
    assert (sae.cfg.d_in, sae.cfg.d_sae) == (64, 128)
    held_cache = collect_residuals(model, [2], heldout)[2]
    metrics = sae_metrics(model, sae.eval(), 2, heldout, held_cache, [0, 1, 2], batch_size=8)
    assert metrics["variance_explained"] > 0.3
    assert metrics["ce_loss_recovered"] > 0.3
    assert metrics["l0"] == pytest.approx(8, abs=0.5)


def test_data_init_starts_each_latent_at_a_drawn_training_residual(tiny_model_dir):
    from saesteer.train import _training_sae, init_from_data

    settings = settings_for(TrainSettings, d_sae=16, k=4, init="data")
    sae = _training_sae(settings, 8, 0)
    norms = sae.W_dec.norm(dim=1).clone()
    acts = torch.randn(40, 8, generator=torch.Generator().manual_seed(1)) + 3.0
    with torch.no_grad():
        sae.b_dec.copy_(acts.mean(0))
    drawn = init_from_data(sae, acts, seed=0)
    assert len(set(drawn.tolist())) == 16
    for i, row in enumerate(drawn.tolist()):
        direction = (acts[row] - acts.mean(0)) / (acts[row] - acts.mean(0)).norm()
        assert torch.allclose(sae.W_dec[i], direction * norms[i], atol=1e-5)
        assert torch.allclose(sae.W_enc[:, i], direction, atol=1e-5)
    assert torch.equal(drawn, init_from_data(sae, acts, seed=0))
    with pytest.raises(ConfigError, match="activation_tokens"):
        init_from_data(sae, acts[:10], seed=0)

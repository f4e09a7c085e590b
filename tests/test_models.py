import pytest
import torch

from saesteer.errors import ConfigError, ModelError
from saesteer.models import (
    EmbeddedSource,
    HubSource,
    LocalSource,
    decoder_layers,
    final_norm,
    load_model,
    model_info,
    model_source,
)
from tests.helpers import REPO, TINY_D_MODEL, TINY_LAYERS, TINY_VOCAB


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("embedded:smollm2-135m-instruct", EmbeddedSource),
        ("hf:google/gemma-2-2b", HubSource),
    ],
)
def test_model_source_registry(spec, kind):
    assert isinstance(model_source(spec), kind)


@pytest.mark.parametrize("spec", ["smollm2", "gguf:x", "hf:", "embedded:nope"])
def test_bad_model_source(spec):
    with pytest.raises(ConfigError, match="model.source"):
        model_source(spec)


def test_local_source_reads_layer_count(tiny_model_dir):
    source = model_source(f"local:{tiny_model_dir}")
    assert isinstance(source, LocalSource)
    assert source.n_layers() == TINY_LAYERS
    assert source.resolve() == tiny_model_dir


def test_uncached_hub_model_has_unknown_layer_count():
    assert HubSource("nobody/not-a-model").n_layers() is None


def test_architecture_accessors(tiny_model_dir):
    model, _ = load_model(tiny_model_dir, device="cpu")
    assert len(decoder_layers(model)) == TINY_LAYERS
    assert final_norm(model) is model.model.norm
    assert model_info(f"local:{tiny_model_dir}", "float32") == {
        "source": f"local:{tiny_model_dir}",
        "path": str(tiny_model_dir.resolve()),
        "dtype": "float32",
        "n_layers": TINY_LAYERS,
        "d_model": TINY_D_MODEL,
        "vocab_size": TINY_VOCAB,
    }
    assert model.get_output_embeddings().weight.shape[0] == TINY_VOCAB
    with pytest.raises(ModelError, match="unsupported architecture"):
        decoder_layers(torch.nn.Linear(2, 2))


@pytest.mark.slow
def test_embedded_model_converts_loads_and_generates():
    source = "embedded:smollm2-135m-instruct"
    info = model_info(source, "float32", REPO / "resources")
    assert {k: info[k] for k in ("n_layers", "d_model", "vocab_size")} == {
        "n_layers": 30,
        "d_model": 576,
        "vocab_size": 49152,
    }
    model, tokenizer = load_model(info["path"], device="cpu")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.get_output_embeddings().weight.shape[0] == 49152
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, inputs["input_ids"].shape[1] :])


def test_gguf_chunks_are_joined_only_when_their_checksum_matches(tmp_path):
    import hashlib

    from saesteer.models import join_checked

    parts = [tmp_path / "a.part", tmp_path / "b.part"]
    parts[0].write_bytes(b"GGUF" + bytes(range(200)))
    parts[1].write_bytes(b"tail" * 1000)
    whole = parts[0].read_bytes() + parts[1].read_bytes()
    target = tmp_path / "model.gguf"
    with pytest.raises(ModelError, match="SHA-256"):
        join_checked(parts, "0" * 64, target)
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.part", "b.part"]
    join_checked(parts, hashlib.sha256(whole).hexdigest(), target)
    assert target.read_bytes() == whole


def test_the_embedded_gemma3_is_registered_with_its_chunks():
    from saesteer.models import EMBEDDED, EmbeddedSource

    gemma = EMBEDDED["gemma-3-270m"]
    assert len(gemma.chunks) == 4 and gemma.sha256
    assert EmbeddedSource("gemma-3-270m").n_layers() == 18

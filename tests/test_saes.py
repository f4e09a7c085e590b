import numpy as np
import pytest
import torch
import yaml

from saesteer.errors import ConfigError
from saesteer.saes import check_hook, load_sae, sae_source, saelens_directory
from saesteer.steering import steer, steer_reference, steering_directions
from tests.helpers import REPO, random_sae, save_sae


@pytest.mark.parametrize("hook", ["blocks.7.hook_resid_post", "model.layers.7", "layers.7"])
def test_residual_stream_after_block_L_is_accepted(hook):
    check_hook(hook, 7)


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        ("blocks.6.hook_resid_post", "reads the output of block 6"),
        ("model.layers.8", "reads the output of block 8"),
        ("blocks.7.hook_resid_pre", "not the residual stream after block 7"),
        ("blocks.7.hook_mlp_out", "not the residual stream after block 7"),
        ("blocks.7.attn.hook_z", "not the residual stream after block 7"),
    ],
)
def test_other_hook_points_are_refused(hook, message):
    with pytest.raises(ConfigError, match=message):
        check_hook(hook, 7)


def test_describing_an_sae_of_another_layer_fails(tmp_path):
    save_sae(tmp_path / "sae", layer=1)
    with pytest.raises(ConfigError, match="layer 2: the SAE .* reads the output of block 1"):
        sae_source("local").describe({"source": "local", "path": str(tmp_path / "sae")}, 2)
    assert sae_source("local").describe({"path": str(tmp_path / "sae")}, 1)["layer"] == 1


def test_describing_from_cfg_json_equals_loading(tmp_path, monkeypatch):
    from saesteer import saes

    sae = random_sae("topk", layer=3)
    sae.save_model(tmp_path / "sae")
    spec = {"path": str(tmp_path / "sae")}
    from_cfg = sae_source("local").describe(spec, 3)
    monkeypatch.setattr(saes, "_saelens_v6_cfg", lambda path: None)
    loaded = sae_source("local").describe(spec, 3)
    assert from_cfg == loaded
    assert loaded["architecture"] == "topk" and loaded["hook_name"] == "model.layers.3"


SHIPPED_SAELENS_CONFIGS = sorted(
    p.name
    for p in (REPO / "config").glob("*.yaml")
    if (yaml.safe_load(p.read_text()) or {}).get("sae", {}).get("source") == "saelens"
)


assert SHIPPED_SAELENS_CONFIGS, "no shipped config uses SAE-Lens releases"


@pytest.mark.parametrize("name", SHIPPED_SAELENS_CONFIGS)
def test_shipped_gemmascope_ids_are_in_the_installed_registry(name):
    """Every layer's release and id are in SAE-Lens' pretrained_saes.yaml, and the
    registry's Neuronpedia id for that SAE is the one the config downloads from."""
    config = yaml.safe_load((REPO / "config" / name).read_text())
    release = saelens_directory()[config["sae"]["release"]]
    by_id = {entry["id"]: entry for entry in release["saes"]}
    np_settings = config.get("activations", {}).get("neuronpedia")
    assert config["layers"]
    for layer in config["layers"]:
        entry = by_id.get(config["sae"]["id"].format(layer=int(layer)))
        assert entry is not None, f"{name}: layer {layer}"
        if np_settings:
            source = np_settings["source"].format(layer=int(layer))
            assert entry["neuronpedia"] == f"{np_settings['model_id']}/{source}", layer


GEMMASCOPE = ("gemma-scope-2b-pt-res-canonical", "layer_20/width_16k/canonical")


@pytest.fixture
def gemmascope_hub(tmp_path, monkeypatch) -> dict:
    """A Hugging Face hub cache holding one GemmaScope `params.npz` where SAE-Lens'
    registry says it lies (google/gemma-scope-2b-pt-res, layer_20/width_16k/average_l0_71),
    read offline. The loader takes d_in and d_sae from the release's name; the release's
    config overrides make them the tiny model's 64 and 256."""
    import huggingface_hub.constants as hub
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    release, sae_id = GEMMASCOPE
    lookup = get_pretrained_saes_directory()[release]
    commit = "0" * 40
    repo = tmp_path / ("models--" + lookup.repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit / lookup.saes_map[sae_id]
    snapshot.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {
        "W_enc": rng.standard_normal((64, 256)).astype(np.float32) / 4,
        "W_dec": rng.standard_normal((256, 64)).astype(np.float32) / 8,
        "b_enc": rng.standard_normal(256).astype(np.float32) * 0.1,
        "b_dec": rng.standard_normal(64).astype(np.float32) * 0.1,
        "threshold": np.abs(rng.standard_normal(256)).astype(np.float32),
    }
    np.savez(snapshot / "params.npz", **arrays)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    overrides = {**(lookup.config_overrides or {}), "d_in": 64, "d_sae": 256}
    monkeypatch.setattr(lookup, "config_overrides", overrides)
    return arrays


def test_a_gemmascope_release_loads_through_saelens_own_loader(gemmascope_hub):
    """SAE.from_pretrained's own GemmaScope path: the registry id to a file, JumpReLU with
    its threshold, the hook after block 20; described and loaded as the workflow does."""
    from sae_lens import JumpReLUSAE

    release, sae_id = GEMMASCOPE
    descriptor = sae_source("saelens").describe({"release": release, "id": sae_id}, 20)
    assert descriptor["architecture"] == "jumprelu"
    assert descriptor["hook_name"] == "blocks.20.hook_resid_post"
    assert (descriptor["d_in"], descriptor["d_sae"]) == (64, 256)
    with pytest.raises(ConfigError, match="reads the output of block 20"):
        sae_source("saelens").describe({"release": release, "id": sae_id}, 19)
    sae = load_sae(descriptor)
    assert isinstance(sae, JumpReLUSAE) and not sae.training
    for name, array in gemmascope_hub.items():
        assert torch.equal(getattr(sae, name).detach(), torch.from_numpy(array)), name
    x = torch.randn(200, 64, generator=torch.Generator().manual_seed(0))
    pre = x @ sae.W_enc + sae.b_enc  # GemmaScope does not subtract b_dec first
    latents = sae.encode(x)
    gated = (pre > 0) & (pre <= sae.threshold)  # a ReLU would keep these, JumpReLU not
    assert gated.sum() > 100
    torch.testing.assert_close(latents, pre * (pre > sae.threshold))


def test_steering_a_loaded_gemmascope_sae_equals_the_public_form(gemmascope_hub, any_tiny_model):
    release, sae_id = GEMMASCOPE
    sae = load_sae(sae_source("saelens").describe({"release": release, "id": sae_id}, 20))
    model, _ = any_tiny_model
    prompts = torch.tensor([[1, 5, 9, 20, 7], [1, 40, 41, 3, 3]])
    features, factors = [5, 77], [8.0, 2.0]
    with steer(model, sae, 1, steering_directions(sae, features), torch.tensor(factors)):
        batched = model(prompts).logits
    for row, (feature, factor) in enumerate(zip(features, factors, strict=True)):
        with steer_reference(model, sae, 1, feature, factor):
            single = model(prompts[row : row + 1]).logits[0]
        torch.testing.assert_close(batched[row], single, atol=1e-5, rtol=1e-5)
    assert (batched[:, -1] - model(prompts).logits[:, -1]).abs().max() > 1e-3

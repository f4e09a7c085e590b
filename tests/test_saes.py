import pytest

from saesteer.config import ConfigError
from saesteer.saes import check_hook, sae_source
from tests.conftest import random_sae, save_sae


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

"""The checks that need the sources: feature files, SAE settings, Neuronpedia runs."""

import json

import pytest

from saesteer.config import layer_settings
from saesteer.errors import ConfigError, SaesteerError
from saesteer.preflight import validate_config


def test_feature_file_in_the_papers_format(tiny_config, tmp_path):
    path = tmp_path / "features.json"
    path.write_text(json.dumps({"1": [5, 6], "2": [9]}))
    tiny_config["features"] = {"file": str(path)}
    validate_config(tiny_config)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected"),
        ('{"2": [1]}', "no entry for layer 1"),
        ('{"1": [], "2": [1]}', 'entry "1" must be a non-empty list'),
        ('{"1": ["a"], "2": [1]}', 'entry "1" must be a non-empty list'),
        ('{"1": [3, 3], "2": [1]}', "duplicate ids"),
        ('{"1": [300], "2": [1]}', "feature ids [300] out of range"),
    ],
)
def test_malformed_feature_file(tiny_config, tmp_path, content, message):
    path = tmp_path / "features.json"
    path.write_text(content)
    tiny_config["features"] = {"file": str(path)}
    with pytest.raises(SaesteerError) as err:  # ConfigError, or DataFileError for bad JSON
        validate_config(tiny_config)
    assert str(path) in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("sae", "message"),
    [
        ({"source": "saelens", "id": "x"}, "sae.release: required"),
        ({"source": "saelens", "release": "no-such-release", "id": "x"}, "unknown SAE-Lens"),
        (
            {"source": "saelens", "release": "gemma-scope-2b-pt-res-canonical", "id": "nope"},
            "sae.id: 'nope' (layer 1) is not in release",
        ),
        ({"source": "local"}, "sae.path: required"),
    ],
)
def test_bad_sae_settings(tiny_config, sae, message):
    tiny_config["sae"] = sae
    with pytest.raises(ConfigError) as err:
        validate_config(tiny_config)
    assert message in str(err.value)


def test_saelens_release_config_passes_offline(tiny_config):
    tiny_config["model"]["source"] = "hf:google/gemma-2-2b"
    tiny_config["sae"] = {
        "source": "saelens",
        "release": "gemma-scope-2b-pt-res-canonical",
        "id": "layer_{layer}/width_16k/canonical",
        "d_sae": 16384,
    }
    config = validate_config(tiny_config)
    assert layer_settings(config, 2)["sae"]["id"] == "layer_2/width_16k/canonical"


def test_neuronpedia_source_needs_no_corpus(tiny_config):
    tiny_config["corpus"]["files"] = ["/no/such/*.txt"]
    tiny_config["activations"] = {
        "source": "neuronpedia",
        "neuronpedia": {"model_id": "gemma-2-2b", "source": "{layer}-gemmascope-res-16k"},
    }
    config = validate_config(tiny_config)
    assert config["activations"]["neuronpedia"]["api_key_env"] == "NEURONPEDIA_API_KEY"
    assert config["input_score"] == {"top_k": 5, "max_examples": 100, "min_examples": 5}

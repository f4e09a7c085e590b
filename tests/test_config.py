import logging
from pathlib import Path

import pytest

from saesteer import cli
from saesteer.config import layer_settings
from saesteer.errors import ConfigError
from saesteer.preflight import load_config, validate_config
from saesteer.settings import required_keys, settings_for

REPO = Path(__file__).resolve().parents[1]


def test_valid_config_gets_defaults(tiny_config):
    config = validate_config(tiny_config)
    assert config["model"]["dtype"] == "float32"
    assert config["logit_lens"] == {"top_k": 20, "batch_size": 256}
    assert config["output_score"] == {
        "prompt": "From my experience,",
        "factor": 10.0,
        "top_k": 5,
        "robustness_prompts": ["w1 w2", "w3"],
        "subtract_unsteered": False,
        "method": "fast",
        "batch_size": 256,
    }
    assert set(config["layers"]) == {"1", "2"}
    # The paper's protocol by default: transformers' top-k 50 in both samplers, the raw
    # instruction as the answer's prefix, the harmonic mean of the three mean ratings.
    assert config["generation"]["top_k"] == 50 and config["concepts"]["top_k"] == 50
    assert config["concepts"]["protocol"] == "paper"
    assert config["concepts"]["aggregation"] == "of_means"
    assert config["concepts"]["source"] == "generate"
    assert config["concepts"]["judge"]["chat"]["rubrics"] is None
    tiny_config["generation"]["top_k"] = None  # null: the full vocabulary
    assert validate_config(tiny_config)["generation"]["top_k"] is None


def test_layer_settings_is_the_layers_own_slice(tiny_config, tiny_saes):
    config = validate_config(tiny_config)
    one, two = layer_settings(config, 1), layer_settings(config, 2)
    assert one["sae"]["path"] == f"{tiny_saes}/layer_1"
    assert one["features"] == {"random": 8, "seed": 1}
    assert two["features"] == [0, 3, 7, 255]


def test_layer_sae_override_merges_over_global(tiny_config, tiny_saes):
    tiny_config["layers"][2]["sae"] = {"path": f"{tiny_saes}/layer_3"}
    config = validate_config(tiny_config)
    assert layer_settings(config, 2)["sae"] == {"source": "local", "path": f"{tiny_saes}/layer_3"}
    assert layer_settings(config, 1)["sae"]["path"] == f"{tiny_saes}/layer_1"


def _set(config, dotted, value):
    *parents, last = dotted.split(".")
    node = config
    for key in parents:
        node = node.setdefault(int(key) if key.isdigit() and int(key) in node else key, {})
    node[int(last) if last.isdigit() and int(last) in node else last] = value


def _delete(config, dotted):
    *parents, last = dotted.split(".")
    node = config
    for key in parents:
        node = node[key]
    del node[last]


BAD_VALUES = [
    ("run", "my run!", "at run"),
    ("model.source", "foo:bar", "at model.source"),
    ("model.source", "embedded:gpt-17", "unknown embedded model 'gpt-17'"),
    ("model.source", "local:/no/such/dir", "no config.json in local model directory"),
    ("model.dtype", "float8", "at model.dtype"),
    ("model.device", "gpu", "at model.device"),
    ("sae.source", "magic", "at sae.source"),
    ("sae.path", "/no/such/sae_{layer}", "sae.path: no SAE-Lens cfg.json in /no/such/sae_1"),
    ("features", {"random": 1000}, "layers.1.features.random: 1000 > d_sae=256"),
    ("features", {"random": 0}, "at features"),
    ("features", [1, -2], "at features"),
    ("features", {"file": "/no/such.json"}, "features.file: file not found: /no/such.json"),
    ("layers.2.features", [0, 256], "layers.2.features: feature ids [256] out of range"),
    ("layers", {}, "at layers"),
    ("layers", {"first": {}}, "at layers"),
    ("layers", {9: {}}, "layers.9: layer out of range"),
    ("logit_lens.top_k", 0, "at logit_lens.top_k"),
    ("output_score.top_k", 21, "output_score.top_k: 21 > logit_lens.top_k=20"),
    ("output_score.factor", "ten", "at output_score.factor"),
    ("output_score.robustness_prompts", "all", "at output_score.robustness_prompts"),
    ("output_score.method", "quick", "at output_score.method"),
    ("output_score.batch_size", 0, "at output_score.batch_size"),
    ("typo_key", 1, "Additional properties are not allowed ('typo_key'"),
    ("activations.source", "wiki", "at activations.source"),
    ("activations.n_examples", 0, "at activations.n_examples"),
    ("activations.mine", {"window": 3}, "at activations.mine"),
    ("activations.mine.context_before", -1, "at activations.mine.context_before"),
    ("activations.neuronpedia", {"base_url": "ftp://x"}, "at activations.neuronpedia.base_url"),
    ("activations.neuronpedia", {"concurrency": 0}, "at activations.neuronpedia.concurrency"),
    ("input_score.top_k", 21, "input_score.top_k: 21 > logit_lens.top_k=20"),
    ("logit_lens.top_k", 19, "logit_lens.top_k: 19 < 20, GenSuccess@20 reads"),
    ("generation.factors", [], "at generation.factors"),
    ("generation.factors", [0.0, -1.0], "at generation.factors"),
    ("generation.factors", [2.0, 2.0], "at generation.factors"),
    ("layers.2.factors", ["x"], "at layers.2.factors"),
    ("generation.prefixes", "paper", "at generation.prefixes"),
    ("generation.prefixes", [""], "at generation.prefixes"),
    ("generation.prefixes", {"file": "/no/prefixes.txt"}, "/no/prefixes.txt not found"),
    ("generation.n_prefixes", 4, "generation.n_prefixes: 4 > the 3 prefixes"),
    ("generation.temperature", 0, "at generation.temperature"),
    ("generation.output_strata", [1.5], "at generation.output_strata"),
    ("generation.output_strata", [0.1, 0.01], "output_strata: [0.1, 0.01] is not in ascending"),
    (
        "generation",
        {"max_features": 2, "output_strata": [0.01, 0.1]},
        "generation.max_features: 2 cannot cover the 3 strata",
    ),
    ("generation.source", "api", "at generation.source"),
    ("generation.source", "released", "generation.released.files: required"),
    (
        "generation",
        {"source": "released", "released": {"files": "/no/g_{factor}.json"}},
        "generation.released.files (layer 1, factor 0.0): file not found: /no/g_0.0.json",
    ),
    ("gen_metrics.evaluator", "gpt-9", "at gen_metrics.evaluator"),
    ("gen_metrics.evaluator", "embedded:gpt-9", "unknown embedded model 'gpt-9'"),
    ("gen_metrics.perplexity_of", "prefix", "at gen_metrics.perplexity_of"),
    ("best_factor.max_gen_success", -1, "at best_factor.max_gen_success"),
    ("best_factor.normalization", "zscore", "at best_factor.normalization"),
    ("best_factor.released", "/no/best.json", "best_factor.released: file not found"),
    ("input_score.min_examples", 0, "at input_score.min_examples"),
    ("corpus.files", ["/no/such/*.txt"], "corpus.files: no file matches '/no/such/*.txt'"),
    ("activations", {"source": "neuronpedia"}, "activations.neuronpedia.model_id: required"),
    (
        "activations",
        {"source": "neuronpedia", "neuronpedia": {"model_id": "gemma-2-2b"}},
        "activations.neuronpedia.source: required for source neuronpedia",
    ),
    (
        "activations",
        {"source": "bulk", "bulk": {"source": "x"}},
        "activations.bulk.files: required",
    ),
    (
        "activations",
        {"source": "bulk", "bulk": {"files": "/no/{layer}/*.gz", "source": "{layer}-x"}},
        "activations.bulk.files: no file matches '/no/1/*.gz' (layer 1)",
    ),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_VALUES)
def test_bad_value_is_rejected_naming_the_field(tiny_config, field, value, message):
    _set(tiny_config, field, value)
    with pytest.raises(ConfigError) as err:
        validate_config(tiny_config)
    assert message in str(err.value)


@pytest.mark.parametrize("field", ["run", "model", "sae.source", "model.source"])
def test_missing_required_field(tiny_config, field):
    _delete(tiny_config, field)
    with pytest.raises(ConfigError) as err:
        validate_config(tiny_config)
    assert field.split(".")[-1] in str(err.value)


def test_load_config_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_a_later_train_key_at_its_default_keeps_the_sae_directory():
    from saesteer.config import trained_sae_dir

    config = {"run": "r", "model": {"source": "embedded:x"}, "corpus": {}}
    before = trained_sae_dir(config, 0, {"k": 16, "lr": 0.01})
    assert trained_sae_dir(config, 0, {"k": 16, "lr": 0.01, "init": "sae-lens"}) == before
    assert trained_sae_dir(config, 0, {"k": 16, "lr": 0.01, "init": "data"}) != before
    assert trained_sae_dir(config, 0, {"k": 32, "lr": 0.01}) != before


def test_later_keys_stay_out_only_at_their_schema_defaults():
    from saesteer.config import LATER_DEFAULTS, section_defaults, without_later_defaults

    for section, later in LATER_DEFAULTS.items():
        defaults = section_defaults(section)
        for key, value in later.items():
            # a default that moved in the schema would hide a setting that now matters
            assert defaults[key] == value, f"{section}.{key}"
        assert without_later_defaults(section, defaults).keys() == defaults.keys() - later.keys()
        changed = {
            key: not defaults[key] if isinstance(defaults[key], bool) else "other" for key in later
        }
        assert without_later_defaults(section, changed) == changed


def test_the_schema_uses_json_schema_keywords_only():
    """A YAML slip (an unquoted comma in a flow mapping) turns text into a stray key."""
    import yaml

    from saesteer.config import SCHEMA

    keywords = {"type", "default", "description", "enum", "items", "properties"}
    keywords |= {"additionalProperties", "$ref", "minimum", "maximum", "exclusiveMinimum"}
    keywords |= {"exclusiveMaximum", "minLength", "maxLength", "uniqueItems", "minItems"}
    keywords |= {"maxItems", "required", "oneOf", "anyOf", "allOf", "not", "pattern"}
    keywords |= {"patternProperties", "propertyNames", "const", "definitions", "$schema"}
    keywords |= {"title", "format", "minProperties", "maxProperties"}
    stray = []

    def walk(node, path):
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, [*path, str(i)])
        elif isinstance(node, dict):
            named = path and path[-1] in ("properties", "definitions", "patternProperties")
            for key, value in node.items():
                if not named and key not in keywords and path[-1:] != ["default"]:
                    stray.append("/".join([*path, key]))
                if path[-1:] != ["default"] and key not in ("enum", "const"):
                    walk(value, [*path, key])

    with open(SCHEMA) as f:
        walk(yaml.safe_load(f), [])
    assert stray == []


def test_an_embedded_settings_dataclass_reads_the_same_flat_keys(caplog):
    """The concept answers' sampling settings are the `concepts` keys themselves, and a key
    the caller leaves to the schema is said in the log, not filled in silently."""
    from saesteer.stages.concept_generations import ConceptGenerationSettings
    from saesteer.stages.generations import GenerationSettings

    with caplog.at_level(logging.INFO, logger="saesteer.settings"):
        settings = settings_for(ConceptGenerationSettings, {"temperature": 0.5, "seed": 3})
    assert (settings.sampling.temperature, settings.sampling.seed) == (0.5, 3)
    assert settings.sampling.stop is None  # not a concepts key: the protocol sets it
    assert "the schema's default for" in caplog.text and "batch_size" in caplog.text
    assert "temperature" not in caplog.text.split("default for")[1]
    assert {"temperature", "seed", "stop"} <= set(cli.settings_keys(GenerationSettings))
    assert "sampling" not in cli.settings_keys(GenerationSettings)
    # read only when sampling: none of its keys is required
    assert not {"temperature", "seed"} & required_keys(GenerationSettings)

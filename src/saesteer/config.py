"""Run configuration: schema validation with defaults, then checks that need the model
and SAE metadata, so a bad config fails before any job runs, naming the field."""

from __future__ import annotations

import copy
import glob
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import yaml

DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"

# The largest k of GenSuccess@k (gen_metrics.GEN_SUCCESS_KS).
GEN_SUCCESS_TOP_K = 20


class ConfigError(ValueError):
    """A config value is invalid; the message names the field."""


def load_config(
    path: str | Path, schema: str | Path = DEFAULT_SCHEMA, check_device: bool = True
) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with path.open() as f:
        config = yaml.safe_load(f)
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return validate_config(config, schema, check_device)


def validate_config(
    config: dict, schema: str | Path = DEFAULT_SCHEMA, check_device: bool = True
) -> dict:
    """Validate `config` in place (filling defaults, numbers in their schema type) and
    return it. `check_device=False` skips the device check, for a host that only submits
    jobs to other machines (a cluster's login node)."""
    _normalize_layers(config)
    _check_finite(config)
    _validate_schema(config, schema)
    _check_semantics(config)
    if check_device:
        check_model_device(config["model"]["device"])
    return config


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, so a rule's params (what Snakemake compares to
    decide a rerun) do not change with the order of a config's keys. Numbers are already
    canonical: the schema check makes every `number` field a float (10 and 10.0 alike)."""
    return json.dumps(value, sort_keys=True)


def check_model_device(device: str) -> None:
    """The device must exist on this machine; `auto` always does."""
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"model.device: {device}, but this machine has no CUDA device (torch "
                f"{torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); use auto or cpu"
            )
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"model.device: {device}, but this machine has {torch.cuda.device_count()} "
                f"CUDA device(s) (0..{torch.cuda.device_count() - 1})"
            )
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("model.device: mps, but Apple's MPS is not available here")


def layer_settings(config: dict, layer: int | str) -> dict:
    """This layer's effective settings, with `{layer}` templates filled in.

    Only this slice feeds a layer's jobs, so editing one layer reruns only that layer.
    """
    key = str(layer)
    if key not in config["layers"]:
        raise ConfigError(f"layers.{key}: layer {key} is not configured")
    own = config["layers"][key]
    sae = {**config.get("sae", {}), **own.get("sae", {})}
    if sae.get("source") == "train":
        # Keyed by everything the training reads, so new settings train into a new
        # directory and never replace (or delete) an SAE that took hours to make.
        sae["path"] = trained_sae_dir(config, int(key), sae.get("train", {}))
    for field in ("id", "path"):
        if field in sae:
            sae[field] = sae[field].format(layer=int(key))
    features = copy.deepcopy(own.get("features", config.get("features")))
    factors = list(own.get("factors", config.get("generation", {}).get("factors", [])))
    return {"layer": int(key), "sae": sae, "features": features, "factors": factors}


def trained_sae_dir(config: dict, layer: int, train: dict) -> str:
    """results/<run>/layers/<L>/sae-<key>: the key hashes the training settings, the
    model, and the corpus settings with the size and mtime of its text files."""
    corpus = config.get("corpus", {})
    names = {n for p in corpus.get("files", []) for n in glob.glob(p, recursive=True)}
    stats = {name: Path(name).stat() for name in names if Path(name).is_file()}
    files = sorted((name, st.st_size, st.st_mtime_ns) for name, st in stats.items())
    identity = {
        "layer": layer,
        "train": train,
        "model": {k: config["model"].get(k) for k in ("source", "dtype")},
        "corpus": {k: v for k, v in corpus.items() if k != "files"},
        "corpus_files": files,
    }
    key = hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:12]
    return f"results/{config['run']}/layers/{layer}/sae-{key}"


def configured_layers(config: dict) -> list[int]:
    return sorted(int(k) for k in config["layers"])


def _normalize_layers(config: dict) -> None:
    layers = config.get("layers")
    if isinstance(layers, dict):
        config["layers"] = {str(k): ({} if v is None else v) for k, v in layers.items()}


def _field(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _check_finite(value: Any, path: tuple = ()) -> None:
    """NaN and +-inf pass JSON schema's `number` and every `minimum` (NaN compares false),
    so they are refused before the schema is read."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config error at {_field(path)}: {value} is not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_finite(item, (*path, i))


def _validate_schema(config: dict, schema_path: str | Path) -> None:
    with open(schema_path) as f:
        schema = yaml.safe_load(f)
    validator = _with_defaults(jsonschema.Draft7Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        raise ConfigError(f"config error at {_field(error.absolute_path)}: {error.message}")
    _as_schema_numbers(config, schema, schema)


def _as_schema_numbers(value: Any, schema: dict, root: dict) -> Any:
    """`value` with every integer in a `number` field made a float, in place, so `10` and
    `10.0` are one value everywhere downstream (params, Parquet, logs)."""
    while "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rpartition("/")[2]]
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []):
        value = _as_schema_numbers(value, branch, root)
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        extra = schema.get("additionalProperties")
        for key in value:
            sub = schema["properties"].get(key, extra)
            if isinstance(sub, dict):
                value[key] = _as_schema_numbers(value[key], sub, root)
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key in value:
            value[key] = _as_schema_numbers(value[key], schema["additionalProperties"], root)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value[:] = [_as_schema_numbers(item, schema["items"], root) for item in value]
    elif isinstance(value, int) and not isinstance(value, bool) and "integer" not in types:
        return float(value) if "number" in types else value
    return value


def _with_defaults(validator_class):
    """A validator that also fills `default:` values of object properties."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _check_semantics(config: dict) -> None:
    from saesteer.models import model_source
    from saesteer.saes import sae_source

    _check_corpus(config)
    for score in ("output_score", "input_score"):
        if config[score]["top_k"] > config["logit_lens"]["top_k"]:
            raise ConfigError(
                f"{score}.top_k: {config[score]['top_k']} > logit_lens.top_k="
                f"{config['logit_lens']['top_k']} (the score reads the logit-lens tokens)"
            )
    _check_activations(config)
    _check_generation(config)
    _check_concepts(config)
    source = model_source(config["model"]["source"])
    n_layers = source.n_layers()
    for layer in configured_layers(config):
        if n_layers is not None and layer >= n_layers:
            raise ConfigError(
                f"layers.{layer}: layer out of range, {config['model']['source']} "
                f"has {n_layers} layers (0..{n_layers - 1})"
            )
        settings = layer_settings(config, layer)
        if "source" not in settings["sae"]:
            raise ConfigError(f"sae.source: missing (needed by layer {layer})")
        d_sae = sae_source(settings["sae"]["source"]).check(settings["sae"], layer)
        if settings["features"] is None:
            raise ConfigError(f"layers.{layer}.features: no feature list (and no global features)")
        check_features(settings["features"], layer, d_sae)


def needs_corpus(config: dict) -> bool:
    """Training SAEs and mining activations read the corpus."""
    return config["activations"]["source"] == "mine" or any(
        layer_settings(config, layer)["sae"].get("source") == "train"
        for layer in configured_layers(config)
    )


def _check_activations(config: dict) -> None:
    from saesteer.activations import ActivationsError, export_files

    activations = config["activations"]
    source = activations["source"]
    required = {"neuronpedia": ("model_id", "source"), "bulk": ("files", "source")}
    for field in required.get(source, ()):
        if field not in activations[source]:
            raise ConfigError(f"activations.{source}.{field}: required for source {source}")
    for layer in configured_layers(config) if source == "bulk" else []:
        try:
            export_files(activations["bulk"]["files"], layer)
        except ActivationsError as e:
            raise ConfigError(f"{e} (layer {layer})") from None


def _check_generation(config: dict) -> None:
    from saesteer.downloads import missing_file
    from saesteer.models import model_source
    from saesteer.prompts import resolve_prefixes
    from saesteer.released import factor_file

    generation = config["generation"]
    if config["logit_lens"]["top_k"] < GEN_SUCCESS_TOP_K:
        raise ConfigError(
            f"logit_lens.top_k: {config['logit_lens']['top_k']} < {GEN_SUCCESS_TOP_K}, "
            f"GenSuccess@{GEN_SUCCESS_TOP_K} reads that many logit-lens tokens"
        )
    resolve_prefixes(generation["prefixes"], generation["n_prefixes"])
    cutpoints = generation["output_strata"]
    if cutpoints != sorted(cutpoints):
        raise ConfigError(f"generation.output_strata: {cutpoints} is not in ascending order")
    n = generation["max_features"]
    if cutpoints and n is not None and n <= len(cutpoints):
        raise ConfigError(
            f"generation.max_features: {n} cannot cover the {len(cutpoints) + 1} strata of "
            f"generation.output_strata {cutpoints}; steer at least {len(cutpoints) + 1}"
        )
    if generation["source"] == "released":
        if "files" not in generation["released"]:
            raise ConfigError("generation.released.files: required for source released")
        for layer in configured_layers(config):
            for factor in layer_settings(config, layer)["factors"]:
                path = factor_file(generation["released"]["files"], factor)
                if not Path(path).is_file():
                    where = f"generation.released.files (layer {layer}, factor {factor})"
                    raise ConfigError(missing_file(where, path))
    if config["gen_metrics"]["evaluator"]:
        model_source(config["gen_metrics"]["evaluator"])
    released = config["best_factor"]["released"]
    if released and not Path(released).is_file():
        raise ConfigError(missing_file("best_factor.released", released))


def _check_concepts(config: dict) -> None:
    from saesteer.instructions import INSTRUCTIONS, read_instruction_file

    concepts = config["concepts"]
    configured = configured_layers(config)
    for layer in concepts["layers"]:
        if layer not in configured:
            raise ConfigError(f"concepts.layers: layer {layer} is not in layers {configured}")
    if concepts["source"] == "released":
        _check_released_concepts(concepts)
        return  # the paper's answers and ratings replace generation and judging
    if concepts["n_select"] >= concepts["n_instructions"]:
        raise ConfigError(
            f"concepts.n_select: {concepts['n_select']} leaves no test instructions "
            f"(n_instructions {concepts['n_instructions']})"
        )
    spec = concepts["instructions"]
    pool = INSTRUCTIONS if spec == "builtin" else spec
    if isinstance(spec, dict):
        pool = read_instruction_file(spec["file"])
    if isinstance(pool, (list, tuple)) and len(pool) < concepts["n_instructions"]:
        raise ConfigError(
            f"concepts.instructions: {len(pool)} instructions, fewer than n_instructions "
            f"{concepts['n_instructions']}"
        )
    rubrics = concepts["judge"]["chat"]["rubrics"]
    if concepts["judge"]["kind"] == "chat" and rubrics:
        from saesteer.judges.base import JudgeError
        from saesteer.judges.chat import load_rubrics

        try:
            load_rubrics(rubrics)
        except JudgeError as e:
            raise ConfigError(str(e)) from None
    if concepts["description"] == "neuronpedia":
        for field in ("model_id", "source"):
            if field not in config["activations"].get("neuronpedia", {}):
                raise ConfigError(
                    f"activations.neuronpedia.{field}: required for Neuronpedia explanations "
                    "(concepts.description)"
                )


def _check_released_concepts(concepts: dict) -> None:
    from saesteer.downloads import missing_file
    from saesteer.released import ReleasedDataError
    from saesteer.released_concepts import N_INSTRUCTIONS, released_layers

    released = concepts["released"]
    answers = Path(released["data_dir"]) / "generated_texts" / released["model_dir"]
    if not Path(released["data_dir"]).is_dir():
        raise ConfigError(missing_file("concepts.released.data_dir", released["data_dir"]))
    if not answers.is_dir():
        raise ConfigError(
            f"concepts.released.model_dir: {answers} is not a directory (the release has "
            "generated_texts/gemma_9b_it for Concept500)"
        )
    if concepts["n_select"] >= N_INSTRUCTIONS:
        raise ConfigError(
            f"concepts.n_select: {concepts['n_select']} leaves no test answers of the "
            f"release's {N_INSTRUCTIONS} per concept"
        )
    try:
        layers = released_layers(released["data_dir"], released["model_dir"])
    except ReleasedDataError as e:
        raise ConfigError(f"concepts.released: {e}") from None
    missing = sorted(set(concepts["layers"]) - layers)
    if missing:
        raise ConfigError(
            f"concepts.layers: the release has no concepts at layers {missing} "
            f"(it has {sorted(layers)})"
        )


def _check_corpus(config: dict) -> None:
    from saesteer.text_sources import text_source

    needs = needs_corpus(config)
    for name in config["corpus"]["sources"] if needs else []:
        if text_source(name).missing():
            raise ConfigError(f"corpus.sources: {name} {text_source(name).missing()}")
    for pattern in config["corpus"]["files"] if needs else []:
        if not glob.glob(pattern, recursive=True):
            raise ConfigError(f"corpus.files: no file matches {pattern!r}")


def check_features(spec: Any, layer: int, d_sae: int | None) -> None:
    """Catch bad feature ids early; `d_sae` is None when unknown before the SAE loads."""
    where = f"layers.{layer}.features"
    if isinstance(spec, dict) and "file" in spec:
        ids = read_feature_file(spec["file"], layer)
        where += f" (file {spec['file']})"
    elif isinstance(spec, dict):
        if d_sae is not None and spec["random"] > d_sae:
            raise ConfigError(f"{where}.random: {spec['random']} > d_sae={d_sae}")
        return
    else:
        ids = spec
    if d_sae is not None:
        bad = [i for i in ids if i >= d_sae]
        if bad:
            raise ConfigError(f"{where}: feature ids {bad[:5]} out of range, d_sae={d_sae}")


def read_feature_file(path: str | Path, layer: int) -> list[int]:
    """Read the paper's feature-list JSON, `{"<layer>": [index, ...]}`, for one layer."""
    from saesteer.downloads import missing_file
    from saesteer.io import read_json_object

    where = f"features file {path}"
    if not Path(path).is_file():
        raise ConfigError(missing_file("features.file", path))
    data = read_json_object(path, where, '{"<layer>": [ids]}', ConfigError)
    if str(layer) not in data:
        raise ConfigError(f"{where}: no entry for layer {layer} (has {sorted(data)[:10]})")
    ids = data[str(layer)]
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids)
    ):
        raise ConfigError(f'{where}: entry "{layer}" must be a non-empty list of ids >= 0')
    if len(set(ids)) != len(ids):
        raise ConfigError(f'{where}: entry "{layer}" has duplicate ids')
    return ids

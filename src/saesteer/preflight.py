"""Checks of a run config that need its sources (the model, the SAEs, feature files,
released data, the device), so a bad config fails before any job runs, naming the field."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from saesteer.activations import export_files
from saesteer.concepts.instructions import INSTRUCTIONS, read_instruction_file
from saesteer.concepts.judges.chat import load_rubrics
from saesteer.concepts.released import N_INSTRUCTIONS
from saesteer.config import (
    GEN_SUCCESS_TOP_K,
    SCHEMA,
    configured_layers,
    layer_settings,
    needs_corpus,
    read_config,
    resolve_config,
)
from saesteer.corpus import read_text_file
from saesteer.downloads import missing_file
from saesteer.errors import (
    ActivationsError,
    ConfigError,
    DataFileError,
    JudgeError,
    ReleasedDataError,
)
from saesteer.features import check_features
from saesteer.http import is_loopback
from saesteer.models import check_model_device, model_source
from saesteer.prompts import resolve_prefixes
from saesteer.released import factor_file, released_layers
from saesteer.saes import sae_source
from saesteer.text_sources import text_source


def load_config(path: str | Path, schema: str | Path = SCHEMA, check_device: bool = True) -> dict:
    """A config file, its defaults filled in and every check passed."""
    return validate_config(read_config(path), schema, check_device)


def validate_config(config: dict, schema: str | Path = SCHEMA, check_device: bool = True) -> dict:
    """Validate `config` in place (filling defaults, numbers in their schema type) and
    return it. `check_device=False` skips the device check, for a host that only submits
    jobs to other machines (a cluster's login node)."""
    resolve_config(config, schema)
    _check_semantics(config)
    if check_device:
        check_model_device(config["model"]["device"])
    return config


def _check_semantics(config: dict) -> None:

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


def _check_activations(config: dict) -> None:

    activations = config["activations"]
    source = activations["source"]
    scoring = config["input_score"]
    usable = min(activations["n_examples"], scoring["max_examples"])
    if scoring["min_examples"] > usable:
        raise ConfigError(
            f"input_score.min_examples: {scoring['min_examples']} > the {usable} examples a "
            f"feature can have (activations.n_examples {activations['n_examples']}, "
            f"input_score.max_examples {scoring['max_examples']}): every input score "
            "would be null"
        )
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
    chat = concepts["judge"]["chat"]
    remote_http = not chat["base_url"].startswith("https://") and not is_loopback(chat["base_url"])
    if concepts["judge"]["kind"] == "chat" and remote_http:
        raise ConfigError(
            f"concepts.judge.chat.base_url: {chat['base_url']} is plain http to another "
            f"host: ${chat['api_key_env']} would cross the network unencrypted; use "
            "https (plain http only for a server on this machine)"
        )
    rubrics = chat["rubrics"]
    if concepts["judge"]["kind"] == "chat" and rubrics:
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
    except (ReleasedDataError, DataFileError) as e:
        raise ConfigError(f"concepts.released: {e}") from None
    missing = sorted(set(concepts["layers"]) - layers)
    if missing:
        raise ConfigError(
            f"concepts.layers: the release has no concepts at layers {missing} "
            f"(it has {sorted(layers)})"
        )


def _check_corpus(config: dict) -> None:

    needs = needs_corpus(config)
    for name in config["corpus"]["sources"] if needs else []:
        if text_source(name).missing():
            raise ConfigError(f"corpus.sources: {name} {text_source(name).missing()}")
    size = 0
    for pattern in config["corpus"]["files"] if needs else []:
        matches = glob.glob(pattern, recursive=True)
        if not matches:
            raise ConfigError(f"corpus.files: no file matches {pattern!r}")
        for path in filter(os.path.isfile, matches):  # a binary file, named now (64 kB)
            read_text_file(path, limit=1 << 16)
            size += os.path.getsize(path)
    # A token is at least a byte of text: a file corpus smaller than one chunk can never
    # fill it (with sources, the job checks once the corpus is built).
    context = config["corpus"]["context_size"]
    if needs and not config["corpus"]["sources"] and size < context:
        raise ConfigError(
            f"corpus.context_size: {context} tokens per chunk, but corpus.files hold {size} "
            "bytes in all, fewer than one chunk's tokens: lower it, or add text"
        )

import shlex
from pathlib import Path

import saesteer

from saesteer.activations import export_files
from saesteer.config import (
    canonical_json,
    configured_layers,
    layer_settings,
    sweep_saes,
    without_later_defaults,
)
from saesteer.features import read_feature_file
from saesteer.models import host_has_gpu
from saesteer.prompts import resolve_prefixes
from saesteer.residuals import ResidualSizes
from saesteer.stages import RULE_KEYS
from saesteer.saes import weights_stamp
from saesteer.released import factor_file

OUT = f"results/{config['run']}"
# The pages' templates (package data): inputs of the jobs that render them, so an edited
# template remakes the pages.
TEMPLATES = sorted(
    str(path) for path in (Path(saesteer.__file__).parent / "templates").iterdir()
)
LAYERS = configured_layers(config)
MODEL = config["model"]
LOCAL_GPU = host_has_gpu()


def model_gpus(wildcards):
    """The `gpu` resource of the jobs that run the model. One GPU (sbatch --gpus=1 through
    the executor plugin; locally `model_local_gpus` runs one such job at a time), or none
    when the model is pinned to the CPU or mps, or when a local run's host has no GPU,
    where the limit would only queue CPU jobs behind each other. A callable, because the
    executor is known only after the Snakefile is parsed."""
    if MODEL["device"] in ("cpu", "mps"):
        return 0
    return 1 if LOCAL_GPU or not workflow.local_exec else 0


def model_local_gpus(wildcards):
    """The resource the local profile limits to 1 (`local_gpu=1`, workflow/profiles/default):
    a model job on this host's GPU, so a local run shares its GPU one job at a time. Not
    `gpu` itself: Snakemake lets the workflow profile's keys override a cluster profile's,
    and a limit on `gpu` would submit a cluster's GPU jobs one at a time."""
    return 1 if workflow.local_exec and model_gpus(wildcards) else 0


# Per-layer jobs whose time is mostly imports and loading (logit lens, output score,
# mining, SAE metrics) take half the cores, so two of them overlap their single-threaded
# loads; on the demo machine (2 cores) they measured ~1 CPU-second per wall second.
LIGHT_THREADS = max(1, workflow.cores // 2)
# Snakemake starts ready jobs of higher priority first, so light jobs pair up and fill the
# cores together instead of running one at a time, each beside an idle core, while a
# many-thread job waits for both cores.
LIGHT_PRIORITY = 1


CORPUS = config["corpus"]
ACTIVATIONS = config["activations"]
MINED = ACTIVATIONS["source"] == "mine"
TRAINED_LAYERS = [
    layer
    for layer in LAYERS
    if layer_settings(config, layer)["sae"]["source"] == "train"
]
# The layers whose block outputs some job reads from the residual cache: the trained ones
# (training and SAE metrics) and, when activations are mined, all of them.
RESIDUAL_LAYERS = LAYERS if MINED else TRAINED_LAYERS
# Whether the run reads the corpus at all (Neuronpedia examples and downloaded SAEs do not).
USES_CORPUS = bool(RESIDUAL_LAYERS)

# The SAE sweep's trained SAEs, by (variant, layer); trained by rule train_sae like the
# layers' own, from the same residual cache.
SWEEP_SAES = sweep_saes(config)
# Sorted: the order of a config's keys is not a setting (params stay the same).
SWEEP_VARIANTS = sorted(config["sae_sweep"]["variants"])


def residual_sizes():
    """How many chunks of each split the cache holds: what its most demanding reader needs."""
    sizes = ResidualSizes.needed(
        CORPUS["context_size"],
        [
            layer_settings(config, layer)["sae"]["train"]["activation_tokens"]
            for layer in TRAINED_LAYERS
        ]
        + [sae["train"]["activation_tokens"] for sae in SWEEP_SAES.values()],
        [ACTIVATIONS["mine"]["max_tokens"]] if MINED else [],
        config["sae_metrics"]["max_tokens"] if TRAINED_LAYERS else None,
    )
    return sizes


def residual_file(layer):
    return f"{OUT}/residuals/layer_{layer}.safetensors"


def section_settings(section):
    """A stage's `--settings`: a whole config section."""
    return canonical_json(config[section])


def rule_values(stage):
    """The config keys `stage` reads (`RULE_KEYS`), so editing another key reruns nothing
    (a new judge rates again but does not regenerate)."""
    return {
        key: config[section][key]
        for section, keys in RULE_KEYS[stage].items()
        for key in keys
    }


def rule_settings(stage):
    return canonical_json(rule_values(stage))


def optional_inputs(*names):
    """`--name path ...` for each of a job's named inputs that this run has (an input
    function may leave one out)."""

    def flags(wildcards, input):
        present = [name for name in names if name in input.keys() and input[name]]
        return " ".join(
            f"--{name.replace('_', '-')} "
            + " ".join(shlex.quote(str(path)) for path in paths)
            for name in present
            for paths in [
                input[name] if isinstance(input[name], list) else [input[name]]
            ]
        )

    return flags


wildcard_constraints:
    layer=r"\d+",
    variant=r"[a-z0-9][a-z0-9_.-]*",
    key=r"[0-9a-f]{12}",


def sae_settings(wildcards):
    """This layer's SAE settings only, so other layers' edits do not rerun it."""
    return canonical_json(layer_settings(config, wildcards.layer)["sae"])


def feature_settings(wildcards):
    """This layer's feature setting; a feature file is read so only this layer's entry counts."""
    spec = layer_settings(config, wildcards.layer)["features"]
    if isinstance(spec, dict) and "file" in spec:
        spec = read_feature_file(spec["file"], int(wildcards.layer))
    return canonical_json(spec)


def train_settings(wildcards):
    sae = layer_settings(config, wildcards.layer)["sae"]
    path = f"{OUT}/layers/{wildcards.layer}/sae-{wildcards.key}"
    swept = [s for (_, l), s in SWEEP_SAES.items() if l == int(wildcards.layer)]
    for candidate in swept:
        if candidate["path"] == path:
            return canonical_json(candidate["train"])
    if sae["path"] != path:
        raise WorkflowError(
            f"layer {wildcards.layer}: sae-{wildcards.key} is not the SAE of this config's "
            f"training settings ({sae['path']})"
        )
    return canonical_json(sae.get("train", {}))


def sae_files(wildcards):
    """The SAE's files are inputs, so replacing or retraining them reruns the layer."""
    sae = layer_settings(config, wildcards.layer)["sae"]
    if sae["source"] == "local":
        return [f"{sae['path']}/cfg.json", f"{sae['path']}/sae_weights.safetensors"]
    if sae["source"] == "train":
        return [sae["path"]]
    return []


def sae_weights_stamp(wildcards):
    """Size and mtime of a user's SAE weights, so a replaced file reruns the layer even
    when its mtime is older (cp -p, rsync -a, a re-download). A trained SAE has none: its
    directory is train_sae's output, whose mtime already reruns the layer, and a stamp
    read when the job is planned (before training) would be recorded stale and replan the
    layer on the next invocation."""
    sae = layer_settings(config, wildcards.layer)["sae"]
    return canonical_json(
        weights_stamp(sae["path"]) if sae["source"] == "local" else None
    )


def embedded_model(wildcards):
    kind, _, name = MODEL["source"].partition(":")
    return [f"resources/models/{name}"] if kind == "embedded" else []


def activation_settings():
    """The chosen source's settings only, so tuning another source reruns nothing."""
    source = ACTIVATIONS["source"]
    keep = {"source": source, "n_examples": ACTIVATIONS["n_examples"]}
    return canonical_json({**keep, source: ACTIVATIONS[source]})


def activation_inputs(wildcards):
    layer = f"{OUT}/layers/{wildcards.layer}"
    inputs = {"features": f"{layer}/features.parquet"}
    if MINED:
        inputs |= {
            "model": f"{OUT}/model.json",
            "sae": f"{layer}/sae.json",
            "chunks": f"{OUT}/corpus/chunks.parquet",
            "residuals": ancient(residual_file(wildcards.layer)),
        }
    if ACTIVATIONS["source"] == "bulk":
        # Export files are inputs, so replacing them re-imports.
        inputs["export"] = export_files(
            ACTIVATIONS["bulk"]["files"], int(wildcards.layer)
        )
    return inputs


GENERATION = config["generation"]
SAMPLED = GENERATION["source"] == "sample"


# Sampling settings: read only when generation samples.
SAMPLING_KEYS = ("temperature", "top_k", "max_new_tokens", "stop", "seed", "batch_size")


def generation_settings(wildcards):
    """This layer's grid and the resolved prefixes; the released files only when read,
    the sampling settings only when sampled."""
    unused = ["factors", "prefixes", "n_prefixes", "released"]
    settings = {
        key: value
        for key, value in GENERATION.items()
        if key not in unused and (SAMPLED or key not in SAMPLING_KEYS)
    }
    settings["factors"] = layer_settings(config, wildcards.layer)["factors"]
    settings["prefixes"] = resolve_prefixes(
        GENERATION["prefixes"], GENERATION["n_prefixes"]
    )
    if not SAMPLED:
        settings["released"] = GENERATION["released"]
    return canonical_json(without_later_defaults("generation", settings))


def generation_inputs(wildcards):
    layer = f"{OUT}/layers/{wildcards.layer}"
    inputs = {"model": f"{OUT}/model.json", "features": f"{layer}/features.parquet"}
    if GENERATION["output_strata"]:
        inputs["output_scores"] = f"{layer}/output_scores.parquet"
    if GENERATION["live_only"]:
        inputs["input_scores"] = f"{layer}/input_scores.parquet"
    if SAMPLED:
        inputs["sae"] = f"{layer}/sae.json"
    else:
        # The released files are inputs, so replacing them re-imports.
        inputs["released"] = [
            factor_file(GENERATION["released"]["files"], factor)
            for factor in layer_settings(config, wildcards.layer)["factors"]
        ]
    return inputs


def best_factor_inputs(wildcards):
    inputs = {"gen_metrics": f"{OUT}/layers/{wildcards.layer}/gen_metrics.parquet"}
    if config["best_factor"]["released"]:
        inputs["released"] = config["best_factor"]["released"]
    return inputs


def layer_outputs(kind, layers=None):
    """One per-layer artifact of every configured layer (or of `layers`)."""
    return expand(
        f"{OUT}/layers/{{layer}}/{kind}.parquet",
        layer=LAYERS if layers is None else layers,
    )


# The loaded model's memory (MiB): model.mem_mb, else 1 GB for the embedded 135M model
# and 20 GB for any other (a 2-9B model in 16-bit, with room).
MODEL_MB = MODEL.get("mem_mb") or (
    1000 if MODEL["source"].startswith("embedded:") else 20000
)


def model_mem(extra_mb):
    """mem_mb for jobs that load the model (the model plus their working set)."""
    return MODEL_MB + extra_mb


# A separate perplexity evaluator (gen_metrics.evaluator) is counted as another 20 GB in
# 16 bits, 40 GB in float32 (the paper's Gemma-2-9B evaluator is 37 GB in float32).
EVALUATOR_MB = (
    (40000 if MODEL["dtype"] == "float32" else 20000)
    if config["gen_metrics"]["evaluator"]
    else 0
)


CONCEPTS = config["concepts"]
CONCEPT_LAYERS = sorted(CONCEPTS["layers"])


RELEASED_CONCEPTS = CONCEPTS["source"] == "released"
RELEASED_DATA = Path(CONCEPTS["released"]["data_dir"])
# The release's folders the import reads (their files are inputs: replacing one re-imports).
RELEASED_FOLDERS = [
    f"generated_texts/{CONCEPTS['released']['model_dir']}",
    "axbench_instructions",
    "axbench_llm_scores",
    "steering_factors",
]


def concept_settings(stage):
    """The settings `stage` reads (`RULE_KEYS`), the description source resolved (auto
    reads Neuronpedia's explanations when the activations come from there)."""
    settings = rule_values(stage)
    if stage == "concepts":
        if settings["description"] == "auto":
            from_api = ACTIVATIONS["source"] == "neuronpedia"
            settings["description"] = "neuronpedia" if from_api else "derived"
        settings["neuronpedia"] = (
            ACTIVATIONS["neuronpedia"]
            if settings["description"] == "neuronpedia"
            else None
        )
    return canonical_json(settings)


def released_concept_files(wildcards):
    return sorted(
        str(path)
        for folder in RELEASED_FOLDERS
        for path in (RELEASED_DATA / folder).glob("*.json")
    )


def concept_table_inputs(wildcards):
    """Each layer's ratings, or the paper's released ones; the run's output scores."""
    inputs = {"output_scores": layer_outputs("output_scores", CONCEPT_LAYERS)}
    if RELEASED_CONCEPTS:
        inputs["released"] = f"{OUT}/concepts/released_concepts.parquet"
    else:
        inputs["ratings"] = layer_outputs("concept_ratings", CONCEPT_LAYERS)
    return inputs


def concept_rubric_files(wildcards):
    """A chat judge's rubric file is an input, so editing it rerates."""
    judge = CONCEPTS["judge"]
    rubrics = judge["chat"]["rubrics"] if judge["kind"] == "chat" else None
    return [rubrics] if rubrics else []


def concept_instruction_files(wildcards):
    """A user's instruction file is an input, so editing it reruns the answers."""
    spec = CONCEPTS["instructions"]
    return [spec["file"]] if isinstance(spec, dict) else []


def producers(path):
    """The rules whose outputs match `path` (for messages that say what to rerun)."""
    return [rule.name for rule in workflow.rules if rule.is_producer(path)]


def explorer_page_inputs(wildcards):
    """The layer's artifacts; a concept layer's descriptions and ratings too (not the
    paper's released ones: they are rated on another run's features)."""
    inputs = {
        "templates": TEMPLATES,
        "model": f"{OUT}/model.json",
        **{
            kind: f"{OUT}/layers/{wildcards.layer}/{kind}.parquet"
            for kind in EXPLORER_LAYER_ARTIFACTS
        },
    }
    if int(wildcards.layer) in EXPLORER_CONCEPT_LAYERS:
        for kind in ("concepts", "concept_ratings"):
            inputs[kind] = f"{OUT}/layers/{wildcards.layer}/{kind}.parquet"
    return inputs


EXPLORER_CONCEPT_LAYERS = (
    [] if RELEASED_CONCEPTS else [layer for layer in CONCEPT_LAYERS if layer in LAYERS]
)
EXPLORER_LAYER_ARTIFACTS = [
    "features",
    "logit_lens",
    "negative_logits",
    "input_scores",
    "densities",
    "output_scores",
    "activations",
    "generations",
    "gen_metrics",
    "best_factors",
]


def sweep_inputs(wildcards):
    sae = SWEEP_SAES[(wildcards.variant, int(wildcards.layer))]
    return {
        "model": f"{OUT}/model.json",
        "chunks": f"{OUT}/corpus/chunks.parquet",
        "residuals": ancient(residual_file(wildcards.layer)),
        "sae_dir": sae["path"],
    }


def sweep_settings(wildcards):
    """The variant's training settings and the run's own scoring sections, so a variant is
    scored exactly as the run's layers are; mining is the source (the cache is here)."""
    layer = layer_settings(config, wildcards.layer)
    sae = SWEEP_SAES[(wildcards.variant, int(wildcards.layer))]
    return canonical_json(
        {
            "train": sae["train"],
            "features": {
                "random": config["sae_sweep"]["features"],
                "seed": (
                    layer["features"].get("seed", 0)
                    if isinstance(layer["features"], dict)
                    else 0
                ),
            },
            "sae_metrics": config["sae_metrics"],
            "logit_lens": config["logit_lens"],
            "output_score": {**config["output_score"], "robustness_prompts": []},
            "activations": {
                "source": "mine",
                "n_examples": ACTIVATIONS["n_examples"],
                "mine": ACTIVATIONS["mine"],
            },
            "input_score": config["input_score"],
        }
    )

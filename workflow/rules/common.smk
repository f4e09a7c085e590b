import shlex
from pathlib import Path

import saesteer

from saesteer.config import (
    canonical_json,
    configured_layers,
    layer_settings,
    sweep_saes,
)
from saesteer.models import host_has_gpu
from saesteer.stages import RULE_KEYS

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


def embedded_model(wildcards):
    kind, _, name = MODEL["source"].partition(":")
    return [f"resources/models/{name}"] if kind == "embedded" else []


GENERATION = config["generation"]


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


CONCEPTS = config["concepts"]
CONCEPT_LAYERS = sorted(CONCEPTS["layers"])


RELEASED_CONCEPTS = CONCEPTS["source"] == "released"


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


def producers(path):
    """The rules whose outputs match `path` (for messages that say what to rerun)."""
    return [rule.name for rule in workflow.rules if rule.is_producer(path)]


EXPLORER_CONCEPT_LAYERS = (
    [] if RELEASED_CONCEPTS else [layer for layer in CONCEPT_LAYERS if layer in LAYERS]
)

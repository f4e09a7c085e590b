"""Shared builders for the tests: the tiny models' sizes and tokenizer, random SAE-Lens
SAEs, the tiny run config, a Snakemake runner, an independent logit lens."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml

from saesteer.concepts.released import import_released_concepts

REPO = Path(__file__).resolve().parents[1]
TINY_LAYERS, TINY_D_MODEL, TINY_VOCAB = 4, 64, 128
# Sizes the tiny Llama and the tiny Gemma-2 share.
TINY_SIZES = {
    "vocab_size": TINY_VOCAB,
    "hidden_size": TINY_D_MODEL,
    "intermediate_size": 128,
    "num_hidden_layers": TINY_LAYERS,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 128,
}

TINY_ARCHITECTURES = ("llama", "gemma2", "gemma3")


def word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(TINY_VOCAB - 3)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    # A chat template, so concept steering can treat it as an instruction-tuned model.
    tokenizer.chat_template = (
        "{% for m in messages %}<s> w5 {{ m['content'] }} </s> {% endfor %}"
        "{% if add_generation_prompt %}w6 {% endif %}"
    )
    return tokenizer


def save_sae(path: Path, layer: int, d_in: int = TINY_D_MODEL, d_sae: int = 256, seed: int = 0):
    """A real SAE-Lens SAE with random weights, saved with SAE-Lens."""
    from sae_lens import StandardSAE, StandardSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    torch.manual_seed(seed)
    cfg = StandardSAEConfig(
        d_in=d_in, d_sae=d_sae, metadata=SAEMetadata(hook_name=f"model.layers.{layer}")
    )
    sae = StandardSAE(cfg)
    sae.save_model(path)
    return sae


def make_tiny_config(tiny_model_dir: Path, tiny_saes: Path, tiny_corpus: Path) -> dict:
    return {
        "run": "tiny",
        "model": {"source": f"local:{tiny_model_dir}", "device": "cpu"},
        "sae": {"source": "local", "path": f"{tiny_saes}/layer_{{layer}}"},
        "corpus": {"sources": [], "files": [str(tiny_corpus)], "context_size": 32},
        "features": {"random": 8, "seed": 1},
        "logit_lens": {"top_k": 20},
        "output_score": {"top_k": 5, "robustness_prompts": ["w1 w2", "w3"]},
        "activations": {"n_examples": 20, "mine": {"context_before": 4, "context_after": 2}},
        "input_score": {"top_k": 5, "min_examples": 5},
        "generation": {
            "factors": [0.0, 2.0, 8.0],
            "prefixes": ["w1 w2", "w3", "w4"],
            "n_prefixes": 2,
            "max_features": 6,
            "max_new_tokens": 4,
        },
        "layers": {1: {}, 2: {"features": [0, 3, 7, 255]}},
    }


def run_snakemake(
    workdir: Path, config: dict, *args: str, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run the real workflow in `workdir` on `config`, with this interpreter's tools first
    on PATH; `env` adds or replaces variables."""
    config_file = workdir / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    env = {**os.environ, **(env or {})}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    cmd = [
        "snakemake",
        "--snakefile",
        str(REPO / "workflow" / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config_file),
        "--cores",
        "2",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)


def reference_topk(model, direction: torch.Tensor, k: int):
    """Independent path: make `direction` the last block's output and run the model itself."""
    from saesteer.models import decoder_layers

    last = decoder_layers(model)[-1]

    def replace(module, inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = direction.expand_as(hidden).clone()
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    handle = last.register_forward_hook(replace)
    try:
        logits = model(torch.tensor([[1]])).logits[0, -1]
    finally:
        handle.remove()
    return torch.softmax(logits, -1).topk(k)


def random_sae(kind: str, layer: int = 1, d_in: int = TINY_D_MODEL, d_sae: int = 256, seed=0):
    """An SAE-Lens SAE of architecture `kind` with random weights and non-zero biases.

    `topk` rescales by decoder norm, so its effective decoder rows are not W_dec's rows;
    `jumprelu` has thresholds that switch off part of the latents."""
    from sae_lens import (
        JumpReLUSAE,
        JumpReLUSAEConfig,
        StandardSAE,
        StandardSAEConfig,
        TopKSAE,
        TopKSAEConfig,
    )
    from sae_lens.saes.sae import SAEMetadata

    metadata = SAEMetadata(hook_name=f"model.layers.{layer}")
    common = {"d_in": d_in, "d_sae": d_sae, "metadata": metadata}
    torch.manual_seed(seed)
    sae = {
        "standard": lambda: StandardSAE(StandardSAEConfig(**common)),
        "topk": lambda: TopKSAE(TopKSAEConfig(**common, k=16, rescale_acts_by_decoder_norm=True)),
        "jumprelu": lambda: JumpReLUSAE(JumpReLUSAEConfig(**common)),
    }[kind]()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.W_dec.mul_(1 + torch.rand(d_sae, 1, generator=generator))
        sae.b_dec.copy_(0.1 * torch.randn(d_in, generator=generator))
        sae.b_enc.copy_(0.05 * torch.randn(d_sae, generator=generator))
        if kind == "jumprelu":
            sae.threshold.copy_(0.05 * torch.rand(d_sae, generator=generator))
    return sae.eval().requires_grad_(False)


def planned_jobs(dry_run_output: str) -> list[tuple[str, str]]:
    """(rule, layer) of every job a dry run schedules."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule )", dry_run_output):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        if rule:
            layer = re.search(r"wildcards: .*layer=(\d+)", block)
            jobs.append((rule.group(1), layer.group(1) if layer else ""))
    return jobs


def recorded_command(workdir: Path, output: str) -> str:
    """The shell command Snakemake recorded for the job that wrote `output` (a path
    relative to `workdir`), without its log redirection."""
    import base64

    name = base64.urlsafe_b64encode(output.encode()).decode()
    record = json.loads((workdir / ".snakemake" / "metadata" / name).read_text())
    return record["shellcmd"].split(" 2> ")[0]


def rerun_by_hand(workdir: Path, outputs: list[str], tmp_path: Path) -> list[tuple[Path, Path]]:
    """Run the job that wrote `outputs` again by hand, through the CLI in this process
    (`saesteer <stage> ...` exactly as the rule called it, in `workdir`), writing to
    `tmp_path` instead; (the rule's file, the hand-made one) for each output."""
    import shlex

    from saesteer.cli import main

    command = shlex.split(recorded_command(workdir, outputs[0]))
    pairs = []
    for output in outputs:
        made = tmp_path / Path(output).name
        command = [str(made) if word == output else word for word in command]
        pairs.append((workdir / output, made))
    assert command[0] == "saesteer"
    cwd = Path.cwd()
    os.chdir(workdir)
    try:
        assert main(command[1:]) == 0
    finally:
        os.chdir(cwd)
    return pairs


def by_hand_equals_the_rule(fixture: str, *outputs: str):
    """A test that reruns by hand the job that wrote `outputs` in the `fixture` run (an
    output with `*` is a glob) and finds the rule's files again."""

    @pytest.mark.workflow
    def test(request, tmp_path):
        workdir, _ = request.getfixturevalue(fixture)
        paths = [
            str(next(workdir.glob(o)).relative_to(workdir)) if "*" in o else o for o in outputs
        ]
        assert_same_files(rerun_by_hand(workdir, paths, tmp_path))

    return test


def assert_same_files(pairs: list[tuple[Path, Path]]) -> None:
    """Parquet frames equal (floats to 1e-5: a job may have run on another number of
    threads), JSON equal, other files byte-equal."""
    import polars as pl
    from polars.testing import assert_frame_equal

    for rule_made, hand_made in pairs:
        if rule_made.suffix == ".parquet":
            assert_frame_equal(pl.read_parquet(hand_made), pl.read_parquet(rule_made))
        elif rule_made.is_dir():  # Snakemake's hidden marker files aside
            files = sorted(p.name for p in rule_made.iterdir() if not p.name.startswith("."))
            made = sorted(p.name for p in hand_made.iterdir() if not p.name.startswith("."))
            assert made == files
            assert_same_files([(rule_made / name, hand_made / name) for name in files])
        elif rule_made.suffix == ".safetensors":
            from safetensors.torch import load_file

            rule_tensors, hand_tensors = load_file(rule_made), load_file(hand_made)
            assert rule_tensors.keys() == hand_tensors.keys()
            for key, tensor in rule_tensors.items():
                torch.testing.assert_close(hand_tensors[key], tensor, rtol=1e-5, atol=1e-6)
        elif rule_made.suffix == ".json":
            assert json.loads(hand_made.read_text()) == json.loads(rule_made.read_text())
        else:
            assert hand_made.read_bytes() == rule_made.read_bytes(), rule_made


# A small release of the paper's Concept500 answers and ratings, in its file formats.

RELEASE_MODEL = "gm"
RELEASE_GEN = f"generated_texts/{RELEASE_MODEL}"
RELEASE_BEST = "steering_factors/p_best_steering_factors.json"
RELEASE_INSTRUCTIONS = "axbench_instructions/p_instructions_cache.json"
RELEASE_SCORES = "axbench_llm_scores/p_llm_{}_score_cache.json"


def released(data, **settings) -> str:
    """`released-concepts --settings` for a release at `data`."""
    return json.dumps({"data_dir": str(data), "model_dir": RELEASE_MODEL, **settings})


def instructions_of(key: str) -> list[str]:
    return [f"Say {key} thing {j}." for j in range(10)]


def texts_of(key: str, factor: str, unprefixed=()) -> list[str]:
    """Instruction j followed by its answer; the texts in `unprefixed` lack the instruction."""
    return [
        f"garbled {key} {j}" if j in unprefixed else f"Say {key} thing {j}. ans {factor} {j}"
        for j in range(10)
    ]


def entry(scores, factor, mean=None):
    found = [s for s in scores if s is not None]
    return {
        "scores": scores,
        "mean_score": mean if mean is not None else sum(found) / len(found) if found else None,
        "best_steering_factor": factor,
        "responses": [f"judge says {s}" for s in scores],
    }


def release() -> dict:
    """Relative path -> JSON object of a small release: 2 layers, 5 concepts.

    3_7   factor 0.4, every text starts with its instruction, rated on every aspect;
    3_12  factor 2.0, test texts 6 and 8 do not start with their instruction; instruction
          rating 0, so its score is 0;
    10_2  factor 10.0, whose generation file is absent; null concept entry;
    10_5  factor 0.4, absent from the 0.4 generation file; no concept entry; all its
          instruction ratings null;
    10_9  factor 0.4, no instructions and no ratings: its texts are kept whole.
    """
    best = {"10_5": 0.4, "3_12": 2.0, "3_7": 0.4, "10_2": 10.0, "10_9": 0.4}
    return {
        RELEASE_BEST: best,
        # another model's best factors, as in the release: not read
        "steering_factors/q_best_steering_factors.json": {"3_7": "not read"},
        RELEASE_INSTRUCTIONS: {k: instructions_of(k) for k in ["3_7", "3_12", "10_2", "10_5"]},
        f"{RELEASE_GEN}/p_generations_cache_0_4.json": {
            "3_7": texts_of("3_7", "0_4"),
            "10_9": texts_of("10_9", "0_4"),
            "3_12": texts_of("3_12", "0_4"),
        },
        f"{RELEASE_GEN}/p_generations_cache_2_0.json": {"3_12": texts_of("3_12", "2_0", (6, 8))},
        # not a generation file: ignored
        f"{RELEASE_GEN}/notes.json": {},
        RELEASE_SCORES.format("concept"): {
            "3_7": entry([2, 1, None, 0, 2], 0.4),
            "3_12": entry([1, 1, 1, 1, 1], 2.0),
            "10_2": None,
            "4_1": entry([2, 2, 2, 2, 2], 1.0),  # not a concept of the best-factor file
        },
        RELEASE_SCORES.format("instruct"): {
            "3_7": entry([2, 2, 2, 2, 2], 0.4),
            "3_12": entry([0, 0, 0, 0, 0], 2.0),
            "10_2": entry([1, 2, 1, 2, 1], 10.0),
            "10_5": entry([None] * 5, 0.4),
        },
        RELEASE_SCORES.format("fluency"): {
            "3_7": entry([1, 1, 2, 2, 2], 0.4),
            "3_12": entry([2, 2, 2, 2, 2], 2.0),
            "10_2": entry([2, 2, 2, 2, 2], 10.0),
            "10_5": entry([0, 1, 2, 1, 0], 0.4),
        },
    }


def write(tmp_path, files: dict):
    """Write `files` under tmp_path/data: a str is written as is, None not at all."""
    data = tmp_path / "data"
    (data / RELEASE_GEN).mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        if content is None:
            continue
        path = data / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return data


def import_(data, **kwargs):
    return import_released_concepts(data, model_dir=RELEASE_MODEL, **kwargs)


# Concept steering on the tiny run, at layer 2.

CONCEPT_INSTRUCTIONS = ["w1 w2", "w3", "w4 w5 w6", "w7", "w8 w9"]
TABLE = "results/tiny/concepts/concept_table.html"


def concept_config(tiny_config, **judge) -> dict:
    tiny_config["concepts"] = {
        "layers": [2],
        "max_concepts": 3,
        "instructions": CONCEPT_INSTRUCTIONS,
        "n_instructions": 4,
        "n_select": 2,
        "factors": [1.0, 4.0],
        "max_new_tokens": 6,
        "diffmean_examples": 5,
        "thresholds": [0.0],
        "judge": judge or {"kind": "proxy"},
    }
    return tiny_config


# The tiny model with SAEs trained on the tiny corpus at two layers, up to the logit lens.
TRAINED = {
    "sae": {
        "source": "train",
        "train": {
            "d_sae": 128,
            "k": 8,
            "activation_tokens": 4000,
            "training_tokens": 8192,
            "batch_size_tokens": 256,
        },
    },
    "layers": {1: {"features": [0, 5]}, 3: {"features": [7]}},
    # One sweep variant beside the layers' own SAEs (trained by the same rule).
    "sae_sweep": {"features": 4, "variants": {"k4": {"k": 4}}},
}
TRAINED_TARGETS = ["results/tiny/manifest.json", "results/tiny/sweep/sae_sweep.parquet"] + [
    f"results/tiny/layers/{layer}/{name}.parquet"
    for layer in (1, 3)
    for name in ("sae_metrics", "logit_lens")
]


# Hand-made per-layer Parquet files for aggregation, with known answers.

# layer -> feature -> (input score, output score, best factor, GenSuccess@20 at it)
LAYER_SCORES = {
    2: {10: (0.9, 0.0, 0.2, 0.0), 11: (0.6, 0.001, 0.4, 0.5), 12: (0.7, 0.02, 2.0, 1.0)},
    8: {10: (0.1, 0.3, 4.0, 2.0), 11: (0.0, 0.6, 6.0, 3.0), 12: (0.8, 0.7, None, None)},
}

LAYER_CHANCE = {2: 0.05, 8: 0.2}  # each layer's input-score chance level


def write_layer(root, layer: int, with_sae_metrics: bool = True, with_steering: bool = True):
    rows = LAYER_SCORES[layer]
    out = root / "layers" / str(layer)
    out.mkdir(parents=True)
    features = list(rows)
    pl.DataFrame({"layer": layer, "feature": features}).write_parquet(out / "features.parquet")
    lens = [(layer, f, r, 100 + r, f"t{f}_{r}") for f in features for r in (1, 0)]
    pl.DataFrame(
        lens, schema=["layer", "feature", "rank", "token_id", "token"], orient="row"
    ).write_parquet(out / "logit_lens.parquet")
    pl.DataFrame(
        {
            "feature": features,
            "input_score": [v[0] for v in rows.values()],
            "n_examples": 50,
            "input_score_chance": LAYER_CHANCE[layer],
        }
    ).write_parquet(out / "input_scores.parquet")
    pl.DataFrame(
        {"feature": features, "output_score": [v[1] for v in rows.values()]}
    ).write_parquet(out / "output_scores.parquet")
    if with_steering:
        gs = [v[3] for v in rows.values()]
        pl.DataFrame(
            {
                "feature": features,
                "best_factor": [v[2] for v in rows.values()],
                "effective_factor": [g is None or g > 0 for g in gs],
                "gen_success_1": gs,
                "gen_success_5": gs,
                "gen_success_20": gs,
                "perplexity": [30.0] * 3,
            },
            schema_overrides={"best_factor": pl.Float64, "gen_success_20": pl.Float64},
        ).write_parquet(out / "best_factors.parquet")
    if with_sae_metrics:
        pl.DataFrame(
            {
                "variance_explained": [0.8],
                "ce_loss_recovered": [0.9],
                "l0": [64.0],
                "dead_fraction": [0.01],
                "silent_fraction": [0.02],
            }
        ).write_parquet(out / "sae_metrics.parquet")
    kinds = [
        "features",
        "logit_lens",
        "input_scores",
        "output_scores",
        "best_factors",
        "sae_metrics",
    ]
    return {kind: out / f"{kind}.parquet" for kind in kinds}


def hand_made_tables(root):
    """(features, summary) of layers 2 (with SAE metrics) and 8 (without)."""
    from saesteer.aggregate.join import feature_table
    from saesteer.aggregate.summary import summary_table

    layers = {2: write_layer(root, 2), 8: write_layer(root, 8, with_sae_metrics=False)}
    features = feature_table(layers, n_layers=10)
    return features, summary_table(features)

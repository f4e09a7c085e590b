"""`saesteer estimate`: FLOPs against PyTorch's own count, the workload by hand, the DAG's
job counts, and the command as the README runs it."""

import json
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from saesteer.cli import main
from saesteer.config import resolve_config
from saesteer.costs import KNOWN_SHAPES, Shapes, model_shapes
from saesteer.errors import ConfigError
from saesteer.estimate import estimate, workload
from tests.helpers import REPO, TINY_LAYERS


def test_flops_per_token_equal_pytorchs_count(tiny_model_dir):
    """A forward of n tokens: n times (n blocks attending to n positions + the head). Eager
    attention, whose matmuls PyTorch counts (its full square: context n)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="eager")
    shapes = model_shapes(f"local:{tiny_model_dir}")
    n = 7
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.arange(1, n + 1)[None])
    assert counter.get_total_flops() == n * (shapes.blocks(TINY_LAYERS, n) + shapes.head())


def test_known_shapes_equal_the_embedded_models_configs():
    for name in ("smollm2-135m-instruct", "gemma-3-270m"):
        path = REPO / "resources/models" / name / "config.json"
        if not path.is_file():
            pytest.skip(f"{name} is not converted here")
        shapes = KNOWN_SHAPES[f"embedded:{name}"]
        assert Shapes.from_hf_config(json.loads(path.read_text())) == shapes


def test_workload_by_hand(tiny_config):
    """The tiny config: layer 1 has 8 random features, layer 2 four listed ones; 6 at most
    generate, over 2 prefixes and 3 factors (0 shared), 4 new tokens each."""
    config = resolve_config(tiny_config)
    stages = workload(config, {1: 8, 2: 4})
    texts = 2 * (1 + 6 * 2) + 2 * (1 + 4 * 2)
    assert stages["generations"].generated_tokens == texts * 4
    shapes = model_shapes(config["model"]["source"])
    head = shapes.head()
    assert stages["logit_lens"].flops == 12 * head
    # three prompts (the main one and two robustness prompts), each feature one token
    assert stages["output_scores"].forward_tokens == pytest.approx(
        3 * 12 + 2 * sum(max(1.0, len(p) / 4) for p in ("From my experience,", "w1 w2", "w3"))
    )
    assert stages["activations"].path == "mining"
    assert "train_sae" not in stages  # local SAEs


def test_a_prefix_file_counts_its_prefixes(tiny_config, tmp_path):
    """`generation.prefixes: {file: ...}` holds one prefix a line: the generation job's
    texts and tokens scale with their count (and n_prefixes takes the first n)."""
    tiny_config["generation"]["n_prefixes"] = None
    sizes = {}
    for n in (3, 6):
        path = tmp_path / f"prefixes{n}.txt"
        path.write_text("".join(f"Prefix number {i}\n" for i in range(n)))
        tiny_config["generation"]["prefixes"] = {"file": str(path)}
        sizes[n] = workload(resolve_config(tiny_config), {1: 8, 2: 4})["generations"]
    texts = (1 + 6 * 2) + (1 + 4 * 2)  # per prefix: see test_workload_by_hand
    assert sizes[3].generated_tokens == 3 * texts * 4
    assert sizes[6].generated_tokens == 2 * sizes[3].generated_tokens
    assert sizes[6].flops == pytest.approx(2 * sizes[3].flops)
    tiny_config["generation"]["n_prefixes"] = 4
    fewer = workload(resolve_config(tiny_config), {1: 8, 2: 4})["generations"]
    assert fewer.generated_tokens == 4 * texts * 4


def test_missing_feature_file_needs_a_count(tiny_config, tmp_path):
    tiny_config["features"] = {"file": str(tmp_path / "absent.json")}
    tiny_config["layers"] = {1: {}}
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(tiny_config))
    with pytest.raises(ConfigError, match="--features-per-layer"):
        estimate(path)


@pytest.mark.workflow
def test_estimate_of_the_shipped_configs_from_the_repository_root(monkeypatch, capsys):
    """As the README runs it: the demo plans the DAG's 40 jobs; the Gemma-2 study, whose
    feature list is not here, with --features-per-layer."""
    monkeypatch.chdir(REPO)
    assert main(["estimate", "config/config.yaml"]) == 0
    out = capsys.readouterr().out
    total = next(line for line in out.splitlines() if line.startswith("| **total**"))
    assert total.split("|")[2].strip() == "40"
    assert main(["estimate", "config/gemma-2-2b.yaml", "--features-per-layer", "100"]) == 0
    out = capsys.readouterr().out
    generations = next(line for line in out.splitlines() if line.startswith("| generations"))
    # 26 layers x 50 prefixes x (1 + 100 features x 12 factors) texts x 20 tokens
    assert generations.split("|")[4].strip() == "31.2M"
    if not (REPO / "resources/paper/gemma_2b_features.json").is_file():  # make paper-data
        assert main(["estimate", "config/gemma-2-2b.yaml"]) == 2
    # the released answers' folder not here: a stand-in of its layout plans the jobs
    table1 = ["estimate", "config/gemma-2-9b-it-table1.yaml", "--features-per-layer", "500"]
    assert main(table1) == 0
    out = capsys.readouterr().out
    total = next(line for line in out.splitlines() if line.startswith("| **total**"))
    assert total.split("|")[2].strip().isdigit() and "not counted" not in out


@pytest.mark.workflow
def test_an_estimate_of_targets_counts_only_what_makes_them(monkeypatch):
    """Table 1 from the release generates nothing; one layer's scores cost half of two."""
    monkeypatch.chdir(REPO)
    table1 = estimate(
        Path("config/gemma-2-9b-it-table1.yaml"),
        features_default=500,
        targets=["results/gemma-2-9b-it-table1/concepts/concept_table.html"],
    )
    rules = {row["rule"]: row for row in table1["stages"]}
    assert {"released_concepts", "concept_table", "output_scores"} <= set(rules)
    assert not {"generations", "gen_metrics", "concept_generations"} & set(rules)
    assert table1["total"]["generated_tokens"] == 0
    whole = estimate(Path("config/config.yaml"))
    one = estimate(
        Path("config/config.yaml"), targets=["results/gemma3-demo/layers/16/output_scores.parquet"]
    )
    flops = {row["rule"]: row["flops"] for row in whole["stages"]}
    part = {row["rule"]: row for row in one["stages"]}
    assert part["output_scores"]["jobs"] == 1 and "generations" not in part
    assert part["output_scores"]["flops"] == pytest.approx(flops["output_scores"] / 2)

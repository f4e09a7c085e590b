"""The real Snakemake workflow, end to end, on the tiny model and on the embedded model."""

import copy
import gzip
import hashlib
import json
import os
import re
import shlex
import shutil
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml

from saesteer import cli
from saesteer.config import LATER_DEFAULTS
from saesteer.models import EmbeddedSource, host_has_gpu, load_model
from saesteer.plots import PLOTS
from saesteer.settings import required_keys
from tests.fake_neuronpedia import MODEL_ID, SOURCE, FakeNeuronpedia, feature_json
from tests.helpers import (
    REPO,
    TRAINED,
    TRAINED_TARGETS,
    planned_jobs,
    reference_topk,
    run_snakemake,
    save_sae,
)


@pytest.mark.workflow
def test_model_jobs_hold_a_gpu_locally_only_where_the_host_has_one(tmp_path, tiny_config):
    """The local profile's local_gpu=1 runs one model job at a time. On a host without a
    GPU that limit would only queue CPU jobs behind each other, so they take none there
    (under SLURM they still ask for a `gpu`, and no `local_gpu`: test_slurm)."""
    target = "results/tiny/layers/2/logit_lens.parquet"
    resources = {}
    for device in ("auto", "cpu"):
        config = {**tiny_config, "model": {**tiny_config["model"], "device": device}}
        result = run_snakemake(tmp_path, config, target, "-n")
        block = re.search(r"rule logit_lens:.*?\n\n", result.stdout, re.DOTALL)
        held = {
            k: int(re.search(rf"\b{k}=(\d+)", block.group(0)).group(1))
            for k in ("gpu", "local_gpu")
        }
        resources[device] = held
    gpu = int(host_has_gpu())
    assert resources == {"auto": {"gpu": gpu, "local_gpu": gpu}, "cpu": {"gpu": 0, "local_gpu": 0}}


@pytest.mark.workflow
def test_tiny_run_writes_every_artifact(finished_run, tiny_model_dir):
    workdir, _ = finished_run
    out = workdir / "results" / "tiny"
    for layer, n_features in [(1, 8), (2, 4)]:
        features = pl.read_parquet(out / f"layers/{layer}/features.parquet")
        assert features.height == n_features and set(features["layer"]) == {layer}
        lens = pl.read_parquet(out / f"layers/{layer}/logit_lens.parquet")
        assert lens.columns == ["layer", "feature", "rank", "token_id", "token", "prob", "logit"]
        assert lens["logit"].null_count() == 0
        assert lens.height == n_features * 20
        assert (out / f"logs/logit_lens/{layer}.log").stat().st_size > 0
        assert (out / f"benchmarks/logit_lens/{layer}.tsv").is_file()
        scores = pl.read_parquet(out / f"layers/{layer}/output_scores.parquet")
        assert scores["feature"].to_list() == features["feature"].to_list()
        assert scores["output_score"].is_between(0, 1).all()
        assert set(scores["prompt"]) == {"From my experience,"} and set(scores["factor"]) == {10}
        by_prompt = pl.read_parquet(out / f"layers/{layer}/output_scores_by_prompt.parquet")
        assert by_prompt.height == 3 * n_features  # the main prompt and two robustness prompts
        assert scores["robustness_mean"].is_not_null().all()
        log = (out / f"logs/output_scores/{layer}.log").read_text()
        assert "robustness prompts: pearson" in log
        activations = pl.read_parquet(out / f"layers/{layer}/activations.parquet")
        assert set(activations["feature"]) <= set(features["feature"])
        assert activations.group_by("feature").len()["len"].max() == 20  # n_examples
        assert activations["token_ids"].is_not_null().all()
        assert "mining layer" in (out / f"logs/activations/{layer}.log").read_text()
        inputs = pl.read_parquet(out / f"layers/{layer}/input_scores.parquet")
        assert inputs["feature"].to_list() == features["feature"].to_list()
        # a score exactly where input_score.min_examples (5) examples exist, for most
        enough = inputs["n_examples"] >= 5
        assert inputs["input_score"].is_not_null().to_list() == enough.to_list()
        assert enough.mean() >= 0.5
        assert inputs.drop_nulls("input_score")["input_score"].is_between(0, 1).all()
        assert (inputs["top_k"] == 5).all()
        assert inputs["input_score_chance"].n_unique() == 1  # one chance level per layer
        assert inputs["input_score_chance"].is_between(0, 1).all()
        steered = features["feature"].to_list()[:6]  # generation.max_features
        generations = pl.read_parquet(out / f"layers/{layer}/generations.parquet")
        assert generations.height == len(steered) * 3 * 2  # factors x prefixes
        assert set(generations["prefix"]) == {"w1 w2", "w3"}  # the first n_prefixes
        assert "mean tokens by factor" in (out / f"logs/generations/{layer}.log").read_text()
        metrics = pl.read_parquet(out / f"layers/{layer}/gen_metrics.parquet")
        assert metrics.height == len(steered) * 3 and metrics["perplexity"].is_not_null().all()
        best = pl.read_parquet(out / f"layers/{layer}/best_factors.parquet")
        assert best["feature"].to_list() == steered
        assert best["best_factor"].is_not_null().mean() >= 0.5
        assert best.drop_nulls("best_factor")["best_factor"].is_in([2.0, 8.0]).all()
    assert pl.read_parquet(out / "layers/2/features.parquet")["feature"].to_list() == [0, 3, 7, 255]
    table = pl.read_parquet(out / "features.parquet")
    assert table.height == 12 and table["depth"].unique().sort().to_list() == [0.5, 0.75]
    assert table["logit_lens_tokens"].list.len().unique().to_list() == [20]
    unsteered = table.filter(pl.col("layer") == 1)[6:]  # beyond generation.max_features
    assert (
        unsteered["best_factor"].is_null().all() and unsteered["output_score"].is_not_null().all()
    )
    summary = pl.read_parquet(out / "summary.parquet")
    assert summary["layer"].to_list() == [1, 2, None]
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(
        f"{name}.png" for name in PLOTS
    )
    assert json.loads((out / "findings.json").read_text())["n_features"] == 12
    for layer in (1, 2):
        features = pl.read_parquet(out / f"layers/{layer}/features.parquet")["feature"]
        pages = sorted(p.name for p in (out / f"explorer/layers/{layer}").glob("*.html"))
        assert pages == sorted(f"{f}.html" for f in features)
        assert "feature pages" in (out / f"logs/explorer_pages/{layer}.log").read_text()
    index = (out / "explorer/index.html").read_text()
    assert index.count("<tr data-layer=") == 12 and 'href="layers/2/255.html"' in index
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["path"] == str(tiny_model_dir)
    assert manifest["model"]["n_layers"] == 4
    assert manifest["layers"]["2"]["hook_name"] == "model.layers.2"
    assert manifest["layers"]["2"]["d_sae"] == 256
    assert manifest["layers"]["1"]["path"].endswith("layer_1")
    # Provenance: the corpus's bytes, the software and the machine.
    chunks = hashlib.sha256((out / "corpus/chunks.parquet").read_bytes()).hexdigest()
    assert manifest["corpus"]["chunks_sha256"] == chunks
    assert manifest["software"]["libraries"]["snakemake"] and manifest["machine"]["cores"] >= 1


@pytest.mark.workflow
def test_editing_one_layer_reruns_only_that_layer(finished_run):
    workdir, config = finished_run
    assert planned_jobs(run_snakemake(workdir, config, "-n").stdout) == []
    config["layers"][2]["features"] = [1, 2]
    jobs = planned_jobs(run_snakemake(workdir, config, "-n").stdout)
    assert sorted(jobs) == sorted(FINAL + [(rule, "2") for rule in PER_FEATURE_RULES])


# The run-level rules after the per-layer ones: any layer's change reruns them.
FINAL = [
    ("aggregate", ""),
    ("all", ""),
    ("explorer_index", ""),
    ("findings", ""),
    ("plots", ""),
]
# Each layer's explorer pages read all its artifacts: any change to the layer remakes them.
PAGES = [("explorer_pages", "1"), ("explorer_pages", "2")]

PER_FEATURE_RULES = [
    "features",
    "logit_lens",
    "negative_logits",
    "output_scores",
    "activations",
    "input_scores",
    "generations",
    "gen_metrics",
    "best_factors",
    "explorer_pages",
]


@pytest.mark.workflow
def test_editing_a_global_setting_reruns_every_layer(finished_run):
    workdir, config = finished_run
    config["logit_lens"]["top_k"] = 25
    jobs = planned_jobs(run_snakemake(workdir, config, "-n").stdout)
    assert sorted(jobs) == sorted(
        FINAL
        + PAGES
        + [
            (rule, layer)
            for rule in (
                "best_factors",
                "gen_metrics",
                "input_scores",
                "logit_lens",
                "negative_logits",
                "output_scores",
            )
            for layer in ("1", "2")
        ]
    )


@pytest.mark.workflow
def test_editing_one_layers_factor_grid_reruns_only_its_steering(finished_run):
    workdir, config = finished_run
    config["layers"][2]["factors"] = [0.0, 4.0]
    jobs = planned_jobs(run_snakemake(workdir, config, "-n").stdout)
    steering = ["generations", "gen_metrics", "best_factors"]
    assert sorted(jobs) == sorted(FINAL + PAGES[1:] + [(rule, "2") for rule in steering])
    config["layers"][2].pop("factors")
    config["best_factor"] = {"max_gen_success": 1.0}
    jobs = planned_jobs(run_snakemake(workdir, config, "-n").stdout)
    assert sorted(jobs) == sorted(FINAL + PAGES + [("best_factors", "1"), ("best_factors", "2")])
    config["gen_metrics"] = {"perplexity_of": "continuation"}
    jobs = {rule for rule, _ in planned_jobs(run_snakemake(workdir, config, "-n").stdout)}
    assert jobs == {"gen_metrics", "best_factors", "explorer_pages"} | {rule for rule, _ in FINAL}


@pytest.mark.workflow
def test_output_strata_steer_a_stratified_sample_weighted_in_the_findings(finished_run):
    workdir, config = finished_run
    out = workdir / "results/tiny"
    scores = pl.read_parquet(out / "layers/1/output_scores.parquet")
    cut = float(scores["output_score"].median())
    config["generation"] |= {"max_features": 2, "output_strata": [cut]}
    jobs = planned_jobs(run_snakemake(workdir, config, "-n").stdout)
    steering = ["generations", "gen_metrics", "best_factors"]
    assert sorted(jobs) == sorted(FINAL + PAGES + [(r, layer) for r in steering for layer in "12"])
    result = run_snakemake(workdir, config)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pl.read_parquet(out / "features.parquet")
    for layer in (1, 2):
        rows = table.filter(pl.col("layer") == layer)
        steered = set(pl.read_parquet(out / f"layers/{layer}/generations.parquet")["feature"])
        assert steered == set(rows.drop_nulls("gen_success_20")["feature"])
        assert len(steered) == 2
        high = rows.filter(pl.col("output_score") >= cut)
        if 0 < high.height < rows.height:  # both strata: one steered feature from each
            assert len(steered & set(high["feature"])) == 1
        # The steered features stand for all the layer's features.
        assert rows["steering_weight"].sum() == pytest.approx(rows.height)
    found = json.loads((out / "findings.json").read_text())
    steered = table.drop_nulls("gen_success_20")
    expected = (steered["gen_success_20"] * steered["steering_weight"]).sum() / steered[
        "steering_weight"
    ].sum()
    assert found["mean_gen_success_20"] == pytest.approx(expected)


@pytest.mark.workflow
def test_a_rerun_of_the_generations_gives_the_same_parquet(finished_run):
    workdir, config = finished_run
    path = workdir / "results/tiny/layers/1/generations.parquet"
    before, written = pl.read_parquet(path), path.stat().st_mtime_ns
    result = run_snakemake(
        workdir, config, "--forcerun", "generations", str(path.relative_to(workdir))
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert path.stat().st_mtime_ns > written  # it was written again
    assert ("generations", "1") in planned_jobs(result.stderr + result.stdout)
    assert pl.read_parquet(path).equals(before)


@pytest.mark.workflow
def test_the_papers_released_generations_and_best_factors(finished_run):
    """source: released imports the texts (no sampling), then they are scored as usual."""
    workdir, config = finished_run
    features = pl.read_parquet(workdir / "results/tiny/layers/1/features.parquet")["feature"]
    for factor, text in [(0.0, " w9 w9"), (2.0, " w9 w10"), (8.0, " w11")]:
        data = {f"1_{f}": [f"w1 w2{text}", f"w3{text}"] for f in features}
        (workdir / f"released_{factor}.json").write_text(json.dumps(data))
    (workdir / "best.json").write_text(json.dumps({f"1_{features[0]}": 8.0, "2_0": 0.2}))
    config["layers"] = {1: {}}
    config["generation"] |= {"source": "released", "released": {"files": "released_{factor}.json"}}
    config["best_factor"] = {"released": "best.json"}
    target = "results/tiny/layers/1/best_factors.parquet"
    result = run_snakemake(workdir, config, target)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sampling layer" not in (workdir / "results/tiny/logs/generations/1.log").read_text()
    generations = pl.read_parquet(workdir / "results/tiny/layers/1/generations.parquet")
    assert generations.filter(pl.col("factor") == 2.0)["continuation"].unique().to_list() == [
        " w9 w10"
    ]
    assert generations["source"].str.starts_with("released_").all()
    best = pl.read_parquet(workdir / target)
    assert best["released_factor"].to_list() == [8.0] + [None] * 5  # 6 steered features
    # A missing factor file is a config error before any job runs.
    config["layers"] = {1: {"factors": [0.0, 0.4]}}
    result = run_snakemake(workdir, config, "-n")
    assert result.returncode != 0
    message = "generation.released.files (layer 1, factor 0.4): file not found: released_0.4"
    assert message in result.stderr + result.stdout


@pytest.mark.workflow
def test_editing_the_mining_reruns_activations_and_input_scores(finished_run):
    workdir, config = finished_run
    config["activations"]["n_examples"] = 10
    jobs = planned_jobs(run_snakemake(workdir, config, "-n").stdout)
    assert sorted(jobs) == sorted(
        FINAL
        + PAGES
        + [(rule, layer) for rule in ("activations", "input_scores") for layer in ("1", "2")]
    )
    # Another source's settings are not this run's: nothing to redo.
    config["activations"]["n_examples"] = 20
    config["activations"]["neuronpedia"] = {"concurrency": 9}
    assert planned_jobs(run_snakemake(workdir, config, "-n").stdout) == []
    config["input_score"]["min_examples"] = 2
    jobs = planned_jobs(run_snakemake(workdir, config, "-n").stdout)
    assert sorted(jobs) == sorted(FINAL + PAGES + [("input_scores", "1"), ("input_scores", "2")])


@pytest.mark.workflow
def test_editing_the_explorer_remakes_only_its_pages(finished_run):
    workdir, config = finished_run
    config["explorer"] = {"contexts": 5}
    jobs = planned_jobs(run_snakemake(workdir, config, "-n").stdout)
    assert sorted(jobs) == sorted(PAGES + [("explorer_index", ""), ("all", "")])


@pytest.mark.workflow
def test_editing_the_output_score_reruns_only_the_scores(finished_run):
    workdir, config = finished_run
    config["output_score"]["factor"] = 4.0
    jobs = planned_jobs(run_snakemake(workdir, config, "-n").stdout)
    assert sorted(jobs) == sorted(FINAL + PAGES + [("output_scores", "1"), ("output_scores", "2")])


@pytest.mark.workflow
def test_bad_config_fails_before_any_job(tmp_path, tiny_config):
    tiny_config["layers"][2]["features"] = [0, 9999]
    result = run_snakemake(tmp_path, tiny_config)
    assert result.returncode != 0
    assert "layers.2.features: feature ids [9999] out of range, d_sae=256" in result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
@pytest.mark.slow
def test_embedded_model_through_the_logit_lens_rule(tmp_path):
    """The real SmolLM2 weights through the rule, checked against a model forward per feature."""
    model_dir = EmbeddedSource("smollm2-135m-instruct").resolve(REPO / "resources")
    (tmp_path / "resources").mkdir()
    (tmp_path / "resources" / "models").symlink_to(model_dir.parent)
    sae = save_sae(tmp_path / "sae_27", layer=27, d_in=576, d_sae=64)
    config = {
        "run": "embedded",
        "model": {"source": "embedded:smollm2-135m-instruct", "device": "cpu"},
        "sae": {"source": "local", "path": str(tmp_path / "sae_{layer}")},
        "layers": {27: {"features": [3, 10, 63]}},
    }
    target = "results/embedded/layers/27/logit_lens.parquet"
    result = run_snakemake(tmp_path, config, target)
    assert result.returncode == 0, result.stderr[-3000:]
    lens = pl.read_parquet(tmp_path / target)
    assert lens.height == 3 * 20
    model, tokenizer = load_model(model_dir, device="cpu")
    for feature in (3, 10, 63):
        ref = reference_topk(model, sae.W_dec[feature].detach(), 20)
        rows = lens.filter(pl.col("feature") == feature).sort("rank")
        assert rows["token_id"].to_list() == ref.indices.tolist()
        assert rows["token"].to_list() == tokenizer.batch_decode([[t] for t in ref.indices])
        torch.testing.assert_close(
            torch.tensor(rows["prob"].to_list()),
            ref.values.double(),
            atol=1e-6,
            rtol=1e-4,
            check_dtype=False,
        )


@pytest.mark.workflow
def test_trained_saes_on_a_file_corpus(tmp_path, tiny_config):
    """source=train: corpus -> tokens -> one SAE-Lens training job per layer -> metrics."""
    tiny_config |= copy.deepcopy(TRAINED)
    # The stages up to the logit lens: the later ones read a trained SAE like any other.
    targets = list(TRAINED_TARGETS)
    result = run_snakemake(tmp_path, tiny_config, *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "results" / "tiny"
    manifest = json.loads((out / "manifest.json").read_text())
    for layer in (1, 3):
        entry = manifest["layers"][str(layer)]
        assert entry["source"] == "train" and entry["d_sae"] == 128
        # Relative to the checkout the run ran in: a committed manifest names no home.
        assert re.fullmatch(rf"results/tiny/layers/{layer}/sae-[0-9a-f]{{12}}", entry["path"])
        metrics = pl.read_parquet(out / f"layers/{layer}/sae_metrics.parquet").row(0, named=True)
        assert metrics["layer"] == layer and metrics["variance_explained"] > 0
        assert pl.read_parquet(out / f"layers/{layer}/logit_lens.parquet").height > 0
    # One model pass wrote both layers' residuals (train and held-out chunks).
    assert "residuals train" in (out / "logs/residuals.log").read_text()
    # A trained SAE is protected: editing a layer's features must not retrain it.
    tiny_config["layers"][3]["features"] = [8]
    jobs = planned_jobs(run_snakemake(tmp_path, tiny_config, "-n", *targets).stdout)
    assert sorted(jobs) == [("features", "3"), ("logit_lens", "3")]
    tiny_config["layers"][3]["features"] = [7]
    # A new layer: the residual pass runs again (for every layer's file), but only the new
    # layer trains and is measured; the others' SAEs and metrics stay as they were.
    kept = {
        path: path.stat().st_mtime_ns
        for layer in (1, 3)
        for path in [
            *(out / f"layers/{layer}").glob("sae-*/*"),
            out / f"layers/{layer}/sae_metrics.parquet",
        ]
    }
    tiny_config["layers"][2] = {"features": [1]}
    targets += [f"results/tiny/layers/2/{name}.parquet" for name in ("sae_metrics", "logit_lens")]
    jobs = planned_jobs(run_snakemake(tmp_path, tiny_config, "-n", *targets).stdout)
    assert ("residuals", "") in jobs and ("train_sae", "2") in jobs
    assert {layer for rule, layer in jobs if rule != "manifest"} == {"", "2"}
    result = run_snakemake(tmp_path, tiny_config, *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {path: path.stat().st_mtime_ns for path in kept} == kept
    # Its own SAE, and the SAE of the sweep's one variant (k4) at the new layer.
    assert len(list((out / "layers/2").glob("sae-*"))) == 2
    assert planned_jobs(run_snakemake(tmp_path, tiny_config, "-n", *targets).stdout) == []
    # A rerun after deleting results/ (.snakemake/ kept) trains and describes the SAEs
    # again, once: the run after it plans nothing, rather than replanning every layer from
    # a weights stamp read before training.
    shutil.rmtree(out)
    result = run_snakemake(tmp_path, tiny_config, *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ("train_sae", "2") in planned_jobs(result.stdout + result.stderr)
    assert planned_jobs(run_snakemake(tmp_path, tiny_config, "-n", *targets).stdout) == []


def _job_counts(dry_run_output: str) -> dict[str, int]:
    return dict(Counter(rule for rule, _ in planned_jobs(dry_run_output)))


def _assert_commands_parse(dry_run_output: str) -> None:
    """Every planned `saesteer` command parses by its stage's signature, and its
    `--settings` has no key the stage refuses (the workflow passes nothing unknown)."""
    commands = [
        shlex.split(line.removeprefix("Shell command: "))
        for line in dry_run_output.splitlines()
        if line.startswith("Shell command: saesteer ")
    ]
    assert commands
    for argv in commands:
        argv = argv[: argv.index("2>")] if "2>" in argv else argv
        func = cli.command(argv[1])
        args = vars(cli.parser_for(func, argv[1]).parse_args(argv[2:]))
        if (cls := cli._settings_class(func)) is not None:
            cli.check_settings_keys(cls, args["settings"])
            _assert_every_key_given(argv[1], cls, args["settings"])


def _assert_every_key_given(command: str, cls: type, given: dict) -> None:
    """The workflow passes every key its stage reads, so no job runs at a schema default
    the user never saw (settings_for fills them only for a command run by hand). Left out
    on purpose: a field with its own default (another source's settings), and a key added
    after runs were made, at its default (config.LATER_DEFAULTS: it keeps old params)."""
    later = {key for section in cls.SECTIONS for key in LATER_DEFAULTS.get(section, {})}
    missing = required_keys(cls) - set(given) - later
    assert not missing, f"{command}: the workflow leaves {sorted(missing)} to the schema"


CONCEPT_RULES = ["concepts", "concept_generations", "concept_ratings"]


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("name", "n_layers", "n_concept_layers"),
    [
        ("config.yaml", 2, 1),
        ("smollm2-demo.yaml", 3, 1),
        ("smollm2-full.yaml", 30, 2),
        ("gemma-3-270m-study.yaml", 8, 1),
    ],
)
def test_shipped_configs_plan_one_job_per_layer(tmp_path, name, n_layers, n_concept_layers):
    config = yaml.safe_load((REPO / "config" / name).read_text())
    # The Debian corpus may be absent where tests run; a file corpus plans the same DAG.
    (tmp_path / "text.txt").write_text("Some text. " * 1000)  # more bytes than one chunk
    config["corpus"].update(sources=[], files=[str(tmp_path / "text.txt")])
    result = run_snakemake(tmp_path, config, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_commands_parse(result.stdout)
    per_layer = ["train_sae", "sae", "sae_metrics", *PER_FEATURE_RULES]
    once = ["model", "embedded_model", "corpus", "tokenize_corpus", "residuals", "manifest"]
    once += ["all"]
    once += ["aggregate", "plots", "findings", "explorer_index", "concept_table"]
    assert _job_counts(result.stdout) == {
        **dict.fromkeys(per_layer, n_layers),
        **dict.fromkeys(CONCEPT_RULES, n_concept_layers),
        **dict.fromkeys(once, 1),
    }


@pytest.mark.workflow
def test_the_gemma_config_plans_the_papers_study(tmp_path):
    """26 layers of GemmaScope SAEs with Neuronpedia activations: no corpus, no training."""
    config = yaml.safe_load((REPO / "config" / "gemma-2-2b.yaml").read_text())
    assert config["features"]["file"] == "resources/paper/gemma_2b_features.json"
    assert config["model"]["dtype"] == "float32"  # as the paper ran
    ids = {str(layer): list(range(100)) for layer in range(26)}  # the paper's file's form
    (tmp_path / "features.json").write_text(json.dumps(ids))
    config["features"]["file"] = str(tmp_path / "features.json")
    result = run_snakemake(tmp_path, config, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_commands_parse(result.stdout)
    per_layer = [rule for rule in PER_FEATURE_RULES] + ["sae"]
    once = ["model", "manifest", "all", "aggregate", "plots", "findings", "explorer_index"]
    assert _job_counts(result.stdout) == {**dict.fromkeys(per_layer, 26), **dict.fromkeys(once, 1)}


@pytest.mark.workflow
def test_the_concept500_config_plans_the_papers_table_1(tmp_path):
    """Gemma-2-9B-it at layers 20 and 31 with the paper's files (stand-ins of the same
    format here): every stage per layer, concept steering on both."""
    config = yaml.safe_load((REPO / "config" / "gemma-2-9b-it-concept500.yaml").read_text())
    ids = {"20": list(range(0, 1000, 2)), "31": list(range(1, 1000, 2))}
    (tmp_path / "features.json").write_text(json.dumps(ids))
    cache = {f"{layer}_{i}": [f"q{j}" for j in range(10)] for layer in ids for i in ids[layer]}
    (tmp_path / "instructions.json").write_text(json.dumps(cache))
    config["features"]["file"] = str(tmp_path / "features.json")
    config["concepts"]["instructions"]["file"] = str(tmp_path / "instructions.json")
    result = run_snakemake(tmp_path, config, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_commands_parse(result.stdout)
    per_layer = [*PER_FEATURE_RULES, "sae", *CONCEPT_RULES]
    once = [
        *("model", "manifest", "all", "aggregate", "plots", "findings"),
        *("explorer_index", "concept_table"),
    ]
    assert _job_counts(result.stdout) == {**dict.fromkeys(per_layer, 2), **dict.fromkeys(once, 1)}


@pytest.mark.workflow
def test_the_released_table_1_config_plans_output_scores_and_the_table_only(tmp_path):
    """Table 1 from the paper's release: the table's target needs the model, the SAEs,
    the logit lens and output scores of both layers, and the import; nothing generated or
    judged."""
    config = yaml.safe_load((REPO / "config" / "gemma-2-9b-it-table1.yaml").read_text())
    ids = {"20": list(range(0, 1000, 2)), "31": list(range(1, 1000, 2))}
    (tmp_path / "features.json").write_text(json.dumps(ids))
    config["features"]["file"] = str(tmp_path / "features.json")
    data = tmp_path / "data"
    for name, content in [
        ("generated_texts/gemma_9b_it/m_generations_cache_0_4.json", {}),
        ("steering_factors/m_best_steering_factors.json", {"20_0": 0.4, "31_1": 0.4}),
    ]:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text(json.dumps(content))
    config["concepts"]["released"]["data_dir"] = str(data)
    table = "results/gemma-2-9b-it-table1/concepts/concept_table.html"
    result = run_snakemake(tmp_path, config, table, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    _assert_commands_parse(result.stdout)
    per_layer = ["sae", "features", "logit_lens", "output_scores"]
    once = ["model", "released_concepts", "concept_table"]
    assert _job_counts(result.stdout) == {**dict.fromkeys(per_layer, 2), **dict.fromkeys(once, 1)}


@pytest.mark.workflow
@pytest.mark.parametrize("source", ["neuronpedia", "bulk"])
def test_input_scores_from_neuronpedia_data(tmp_path, tiny_config, tiny_model, source):
    """The API (a loopback fake) and a bulk export give the same activations and scores."""
    tiny_config["layers"] = {2: tiny_config["layers"][2]}
    tiny_config["corpus"] = {"sources": [], "files": ["no-corpus-needed-*.txt"]}
    with FakeNeuronpedia() as server:
        if source == "neuronpedia":
            tiny_config["activations"] = {
                "source": "neuronpedia",
                "neuronpedia": {
                    "model_id": MODEL_ID,
                    "source": SOURCE,
                    "base_url": server.url,
                    "cache_dir": str(tmp_path / "np-cache"),
                },
            }
        else:
            # Two batches, each with both layers' sources: the other layer's lines are skipped.
            for batch, features in enumerate((range(0, 128), range(128, 256))):
                lines = [
                    {**example, "layer": SOURCE.format(layer=layer), "index": str(f)}
                    for layer in (1, 2)
                    for f in features
                    for example in feature_json(f + layer - 2)["activations"]
                ]
                with gzip.open(tmp_path / f"batch-{batch}.jsonl.gz", "wt") as out:
                    out.writelines(json.dumps(line) + "\n" for line in lines)
            tiny_config["activations"] = {
                "source": "bulk",
                "bulk": {"files": str(tmp_path / "batch-*.jsonl.gz"), "source": SOURCE},
            }
        result = run_snakemake(tmp_path, tiny_config, "results/tiny/layers/2/input_scores.parquet")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "corpus" not in result.stdout  # neither source reads the corpus
    out = tmp_path / "results" / "tiny" / "layers"
    features = pl.read_parquet(out / "2/features.parquet")["feature"].to_list()
    activations = pl.read_parquet(out / "2/activations.parquet")
    assert activations.group_by("feature", maintain_order=True).len().rows() == [
        (f, 12) for f in features
    ]
    lens = pl.read_parquet(out / "2/logit_lens.parquet")
    scores = pl.read_parquet(out / "2/input_scores.parquet")
    vocab = tiny_model[1].get_vocab()
    for f in features:
        # The fake's example j peaks on word w{f + j % 3}: 4 examples on each of 3 words
        # (words beyond the tiny vocabulary re-tokenize to <unk>).
        top = set(lens.filter((pl.col("feature") == f) & (pl.col("rank") < 5))["token_id"])
        expected = sum(4 for j in range(3) if vocab.get(f"w{f + j}", 0) in top) / 12
        assert scores.filter(pl.col("feature") == f)["input_score"].item() == expected


def _browser():
    """Headless Debian chromium through its own chromedriver (no driver download)."""
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.skip("Debian's chromium and chromium-driver are not installed (make browser-deps)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(chromedriver), options=options)


def _show_result(driver, page: str, category: str, filename: str) -> None:
    """Open the report, pick a result category in the menu, then view one file."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(page)
    wait = WebDriverWait(driver, 30)
    wait.until(lambda d: d.find_element(By.XPATH, f"//*[normalize-space(text())='{category}']"))
    driver.find_element(By.XPATH, f"//*[normalize-space(text())='{category}']").click()
    row = wait.until(lambda d: d.find_element(By.XPATH, f"//tr[td[contains(., '{filename}')]]"))
    row.find_element(By.CSS_SELECTOR, "a[iconname='eye']").click()


@pytest.mark.workflow
@pytest.mark.browser
def test_the_report_opens_in_a_browser_with_plots_findings_and_the_explorer(finished_run, tmp_path):
    """`snakemake --report` on the tiny run, written where `make report` writes it and
    opened in headless chromium: the findings table holds this run's numbers, every plot
    loads as an image of its real size, and the start page leads to the feature explorer
    (`_check_the_explorer`)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    workdir, config = finished_run
    report = workdir / "results/tiny/report.html"
    result = run_snakemake(workdir, config, "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads((workdir / "results/tiny/findings.json").read_text())
    shots = Path(os.environ.get("SAESTEER_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    page = report.as_uri()
    driver = _browser()
    try:
        _show_result(driver, page, "Findings", "findings.html")
        frame = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "iframe"))
        driver.switch_to.frame(frame)
        table = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "findings"))
        assert "Fraction with input score > 0.5 and output score > 0.5" in table.text
        counted = f"{found['n_counted']} live of {found['n_features']} ({found['n_layers']} layers"
        assert counted in table.text
        # Each of the paper's findings with its verdict.
        verdicts = driver.find_elements(By.CSS_SELECTOR, "#verdicts tr")
        assert len(verdicts) == 1 + len(found["verdicts"])
        shown = [r.find_element(By.TAG_NAME, "strong").text for r in verdicts[1:]]
        assert shown == [v["verdict"] for v in found["verdicts"]]
        thresholds = driver.find_elements(By.CSS_SELECTOR, "#thresholds tr")
        assert [r.text.split()[0] for r in thresholds[1:]] == ["0.01", "0.1", "0.5"]
        # Embedded as a data URI, its links into the explorer could not resolve: gone, and
        # the page says where they work.
        links = driver.find_elements(By.CSS_SELECTOR, "a.explorer-link")
        assert links and not any(a.get_attribute("href") for a in links)
        assert "results/tiny/findings.html" in driver.find_element(By.ID, "explorer-note").text
        driver.switch_to.default_content()
        driver.save_screenshot(str(shots / "findings.png"))
        categories = {
            "roles_across_layers": "Scores across layers",
            "input_vs_output": "Scores across layers",
            "output_threshold_curve": "Filtering by output score",
            "gen_success_filtering": "Filtering by output score",
            "best_factor_histogram": "Steering",
        }
        for name, category in categories.items():
            _show_result(driver, page, category, f"{name}.png")
            # The PNG is 6.4 x 4.2 inches at 120 dpi.
            WebDriverWait(driver, 30).until(
                lambda d: any(
                    (img.get_attribute("naturalWidth"), img.get_attribute("naturalHeight"))
                    == ("768", "504")
                    for img in d.find_elements(By.TAG_NAME, "img")
                )
            )
            driver.save_screenshot(str(shots / f"{name}.png"))
        _check_the_explorer(driver, page, workdir, config, shots)
    finally:
        driver.quit()


def _sorted_by(driver, column: str, key: str) -> list[float]:
    """Click a column of the explorer's table until it sorts descending; the visible
    rows' values of `key`."""
    from selenium.webdriver.common.by import By

    header = driver.find_element(By.CSS_SELECTOR, f"#features th[data-key='{column}']")
    while header.get_attribute("aria-sort") != "descending":
        header.click()
    rows = driver.find_elements(By.CSS_SELECTOR, "#features tbody tr")
    return [float(r.get_attribute(f"data-{key}")) for r in rows if r.is_displayed()]


def _check_the_explorer(driver, page: str, workdir: Path, config: dict, shots: Path) -> None:
    """The report's start page links to the explorer; its table sorts and filters, and the
    address restores a view; a steered feature's page shows its highlighted contexts and
    its steering plot with the best factor marked."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    table = pl.read_parquet(workdir / "results/tiny/features.parquet")
    wait = WebDriverWait(driver, 30)
    driver.get(page)
    link = wait.until(lambda d: d.find_element(By.LINK_TEXT, "explorer/index.html"))
    link.click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#features tbody tr"))
    assert driver.current_url.endswith("results/tiny/explorer/index.html")

    scores = _sorted_by(driver, "output", "output")
    assert scores == sorted(table["output_score"].to_list(), reverse=True)
    driver.save_screenshot(str(shots / "explorer_sorted.png"))
    # The filter keeps what the table says, and the address keeps the filter.
    threshold = scores[4]
    box = driver.find_element(By.ID, "min_output")
    box.send_keys(str(threshold))
    kept = _sorted_by(driver, "output", "output")
    assert kept == [s for s in scores if s >= threshold] and len(kept) < len(scores)
    # the scatter follows the filter: a point for each kept row with both scores
    rows = driver.find_elements(By.CSS_SELECTOR, "#features tbody tr")
    both = {
        f"{r.get_attribute('data-layer')}:{r.get_attribute('data-feature')}"
        for r in rows
        if r.is_displayed() and r.get_attribute("data-input") and r.get_attribute("data-output")
    }
    points = driver.find_elements(By.CSS_SELECTOR, "#scatter a[data-key]")
    plotted = {
        p.get_attribute("data-key")
        for p in points
        if "none" not in (p.get_attribute("style") or "")
    }
    assert plotted == both and len(points) > len(plotted)
    assert f"min_output={threshold}" in driver.current_url
    box.clear()
    box.send_keys("0")
    # The address the findings page and the captions link to restores that view, when the
    # page opens with it and when the address changes under an open page.
    index = driver.current_url.split("#")[0]
    cut = scores[2]
    expected = [s for s in scores if s >= cut]

    def shows(n):
        return lambda d: d.find_element(By.ID, "shown").text == f"{n} of {len(scores)} shown"

    driver.get("about:blank")
    driver.get(f"{index}#min_output={cut}&sort=output:descending")
    wait.until(shows(len(expected)))
    header = driver.find_element(By.CSS_SELECTOR, "#features th[data-key='output']")
    assert header.get_attribute("aria-sort") == "descending"
    rows = driver.find_elements(By.CSS_SELECTOR, "#features tbody tr")
    assert [float(r.get_attribute("data-output")) for r in rows if r.is_displayed()] == expected
    driver.get(f"{index}#min_output={scores[4]}")  # the same page, a new address
    wait.until(shows(len([s for s in scores if s >= scores[4]])))
    driver.get(f'{index}#min_output=%E0%A4%A&sort="x')  # malformed: skipped, all rows
    wait.until(shows(len(scores)))
    driver.get(index)

    steered = table.drop_nulls("best_factor").sort("gen_success_20", descending=True)
    layer, feature = steered["layer"][0], steered["feature"][0]
    driver.find_element(
        By.CSS_SELECTOR, f"#features a[href='layers/{layer}/{feature}.html']"
    ).click()
    wait.until(lambda d: d.find_elements(By.ID, "steering-plot"))
    assert driver.title.startswith(f"Layer {layer}, feature {feature}")
    marked = driver.find_elements(By.CSS_SELECTOR, "#contexts .tok.max")
    assert marked and all(t.is_displayed() for t in marked)
    assert "a8" in marked[0].get_attribute("class").split()  # the feature's largest
    plot = driver.find_element(By.ID, "steering-plot")
    assert plot.is_displayed() and plot.size["width"] > 300 and plot.size["height"] > 150
    best = plot.find_element(By.CSS_SELECTOR, "line.best-factor")  # a vertical line:
    box = driver.execute_script("return arguments[0].getBoundingClientRect()", best)
    assert box["height"] > 100  # (zero wide, so not "displayed" to selenium)
    points = plot.find_elements(By.CSS_SELECTOR, "circle.gen-success")
    assert len(points) == len(config["generation"]["factors"])
    driver.execute_script("arguments[0].scrollIntoView()", plot)
    driver.save_screenshot(str(shots / "feature_page.png"))

"""The fault matrix: what a user can get wrong, or what can go wrong on disk, and what the
pipeline does then. Each case checks the message, that no partial artifact is left, and
that a rerun recovers. Judge-cache, imported-JSON and secret cases: test_faults_data.py."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml

from saesteer.artifacts import read_artifact
from saesteer.cli import main as cli_main
from saesteer.errors import ArtifactError, ConfigError, ModelError, SaeError
from saesteer.models import load_model
from saesteer.preflight import load_config, validate_config
from saesteer.saes import load_sae
from tests.helpers import REPO, run_snakemake, save_sae

SHIPPED = sorted(p.name for p in (REPO / "config").glob("*.yaml"))

# Files the shipped configs name that a user downloads: stand-ins of the same format.
PAPER_IDS = {"20": list(range(0, 1000, 2)), "31": list(range(1, 1000, 2))}
RELEASE = "resources/paper/saes-are-good-for-steering/data"
STAND_INS = {
    "resources/paper/gemma_2b_features.json": {str(i): list(range(100)) for i in range(26)},
    f"{RELEASE}/generated_texts/gemma_9b_it/m_generations_cache_0_4.json": {},
    f"{RELEASE}/steering_factors/m_best_steering_factors.json": {"20_0": 0.4, "31_1": 2.0},
    "resources/paper/gemma_9b_concept500_features.json": PAPER_IDS,
    "resources/paper/gemma2_9b_it_131_instructions_cache.json": {
        f"{layer}_{i}": [f"q{j}" for j in range(10)]
        for layer in PAPER_IDS
        for i in PAPER_IDS[layer]
    },
}


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def _in_clone(clone: Path, *cmd: str) -> subprocess.CompletedProcess:
    """A README command, run as a user runs it: from the root of the clone."""
    return subprocess.run(cmd, cwd=clone, capture_output=True, text=True, env=_env())


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh clone of this working tree (tracked and new files, nothing ignored)."""
    root = tmp_path_factory.mktemp("clone") / "saesteer"
    names = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, names):
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    for name, data in STAND_INS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(json.dumps(data))
    return root


def _layers(dry_run: str) -> set[int]:
    return {int(m) for m in re.findall(r"wildcards: .*?layer=(\d+)", dry_run)}


def _config_layers(name: str) -> set[int]:
    return {int(k) for k in yaml.safe_load((REPO / "config" / name).read_text())["layers"]}


# --- 1. Layering: a config file is the whole run -------------------------------------------


@pytest.mark.workflow
@pytest.mark.parametrize("name", SHIPPED)
def test_readme_dry_run_of_each_shipped_config_from_a_clone(clone, name):
    """`snakemake -n --configfile config/X.yaml` plans exactly X's layers, nothing of the
    demo config's; X rewritten (sorted keys, 10.0 as 10) gives every job the same params,
    so a finished run stays finished."""
    original = yaml.safe_load((clone / "config" / name).read_text())
    rewritten = yaml.safe_dump(_reordered(original), sort_keys=False)
    assert rewritten != yaml.safe_dump(original, sort_keys=False)
    (clone / f"sorted-{name}").write_text(rewritten)
    runs = [
        _in_clone(clone, "snakemake", "-n", "--cores", "1", "--configfile", path)
        for path in (f"config/{name}", f"sorted-{name}")
    ]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-3000:] + runs[1].stderr[-3000:]
    assert _layers(runs[0].stdout) == _config_layers(name)
    assert _shell_commands(runs[0].stdout) == _shell_commands(runs[1].stdout)
    assert len(_shell_commands(runs[0].stdout)) > 10


@pytest.mark.workflow
@pytest.mark.parametrize("name", SHIPPED)
def test_readme_dry_run_with_the_slurm_profile_from_a_clone(clone, name):
    """The README's cluster command plans the same layers through the SLURM executor."""
    result = _in_clone(
        clone,
        "snakemake",
        "-n",
        "--profile",
        "workflow/profiles/slurm",
        "--configfile",
        f"config/{name}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert _layers(result.stdout) == _config_layers(name)


@pytest.mark.workflow
@pytest.mark.parametrize("name", SHIPPED)
def test_check_config_prints_the_resolved_config(clone, name, monkeypatch):
    """check-config validates and prints exactly what the workflow runs."""
    monkeypatch.chdir(clone)  # the config's relative paths are the clone's
    result = _in_clone(clone, "saesteer", "check-config", f"config/{name}")
    assert result.returncode == 0, result.stderr[-3000:]
    printed = yaml.safe_load(result.stdout)
    assert {int(k) for k in printed["layers"]} == _config_layers(name)
    expected = load_config(clone / "config" / name)
    assert json.loads(json.dumps(printed)) == json.loads(json.dumps(expected))


@pytest.mark.workflow
def test_a_one_layer_config_gains_nothing_from_the_demo(clone):
    """A config naming only layer 5 plans layer 5 alone: one SAE to train, not four."""
    (clone / "one.yaml").write_text(
        "run: one\nmodel: {source: 'embedded:smollm2-135m-instruct'}\n"
        "sae: {source: train, train: {d_sae: 64, k: 4}}\nfeatures: {random: 4}\n"
        "corpus: {sources: [], files: [README.md]}\nlayers: {5: {}}\n"
    )
    result = _in_clone(clone, "snakemake", "-n", "--cores", "1", "--configfile", "one.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    assert _layers(result.stdout) == {5}
    assert len(re.findall(r"^rule train_sae:", result.stdout, re.M)) == 1
    assert "concept" not in result.stdout  # the demo's concept layer did not leak in
    checked = _in_clone(clone, "saesteer", "check-config", "one.yaml")
    assert list(yaml.safe_load(checked.stdout)["layers"]) == ["5"]


@pytest.mark.workflow
def test_no_configfile_runs_the_demo(clone):
    """Without --configfile, the README's `snakemake` runs config/config.yaml."""
    result = _in_clone(clone, "snakemake", "-n", "--cores", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert _layers(result.stdout) == _config_layers("config.yaml")


@pytest.mark.workflow
def test_a_missing_download_names_the_file_and_where_to_get_it(clone, tmp_path):
    """The Concept500 config without the paper's files: a clear error, no job, no output."""
    bare = tmp_path / "bare"
    shutil.copytree(clone, bare, ignore=shutil.ignore_patterns("resources"))
    name = "config/gemma-2-9b-it-concept500.yaml"
    result = _in_clone(bare, "snakemake", "--cores", "1", "--configfile", name)
    assert result.returncode != 0
    message = result.stderr + result.stdout
    assert "file not found: resources/paper/" in message
    assert "technion-cs-nlp/saes-are-good-for-steering" in message
    assert "Traceback" not in message
    assert not (bare / "results").exists()


# --- 2. Canonical params -----------------------------------------------------------------


def _reordered(value):
    """The same config written another way: keys sorted (layer keys as strings, so 15 < 3)
    and every whole float written as an integer."""
    if isinstance(value, dict):
        return {str(k): _reordered(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _shell_commands(dry_run: str) -> list[str]:
    return sorted(re.findall(r"^Shell command: (saesteer .*)$", dry_run, re.M))


@pytest.mark.workflow
def test_a_finished_run_rewritten_with_sorted_keys_plans_nothing(finished_run):
    """Against Snakemake's own params records: nothing reruns."""
    workdir, config = finished_run
    config["output_score"]["factor"] = 10  # the schema's 10.0, written as an integer
    config["generation"]["factors"] = [0, 2, 8]
    result = run_snakemake(workdir, _reordered(config), "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr


# --- 3. Trained SAEs are never removed by a settings change --------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256((path / "sae_weights.safetensors").read_bytes()).hexdigest()


@pytest.mark.workflow
def test_new_training_settings_never_remove_a_trained_sae(tmp_path, tiny_config):
    """Run as root (CI is): new settings train into a new directory; the old SAE stays,
    byte for byte, and going back to the old settings retrains nothing."""
    train = {"d_sae": 64, "k": 4, "activation_tokens": 2000, "training_tokens": 4096}
    tiny_config["sae"] = {"source": "train", "train": {**train, "batch_size_tokens": 256}}
    tiny_config["layers"] = {1: {"features": [0, 5]}}
    target = "results/tiny/layers/1/sae.json"
    assert run_snakemake(tmp_path, tiny_config, target).returncode == 0
    layer_dir = tmp_path / "results/tiny/layers/1"
    (first,) = layer_dir.glob("sae-*")
    before = _digest(first)
    tiny_config["sae"]["train"]["lr"] = 0.001
    result = run_snakemake(tmp_path, tiny_config, target)
    assert result.returncode == 0, result.stderr[-3000:]
    trained = set(layer_dir.glob("sae-*"))
    assert first in trained and len(trained) == 2 and _digest(first) == before
    del tiny_config["sae"]["train"]["lr"]
    replan = run_snakemake(tmp_path, tiny_config, "-n", target).stdout
    assert "rule train_sae:" not in replan and "rule sae:" in replan
    assert _digest(first) == before
    # A forced rerun (or new code) runs the job, which keeps the SAE it finds.
    written = (first / "sae_weights.safetensors").stat().st_mtime_ns
    result = run_snakemake(tmp_path, tiny_config, "--forcerun", "train_sae", target)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        "keeping the SAE already trained"
        in (tmp_path / f"results/tiny/logs/train_sae/1-{first.name[4:]}.log").read_text()
    )
    assert _digest(first) == before
    assert (first / "sae_weights.safetensors").stat().st_mtime_ns == written


# --- 4. Finite, bounded numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("output_score.factor", math.nan),
        ("output_score.factor", math.inf),
        ("generation.temperature", math.nan),
        ("generation.factors", [0.0, math.inf]),
        ("corpus.heldout_fraction", math.nan),
        ("best_factor.max_gen_success", -math.inf),
        ("concepts.thresholds", [math.nan]),
        ("concepts.judge.proxy.concept_similarity", [0.0, math.nan]),
    ],
)
def test_non_finite_numbers_are_refused_naming_the_field(tiny_config, field, value):
    section, *rest = field.split(".")
    target = tiny_config.setdefault(section, {})
    for key in rest[:-1]:
        target = target.setdefault(key, {})
    target[rest[-1]] = value
    with pytest.raises(ConfigError, match=rf"config error at {re.escape(field)}(\.\d+)?: .*finite"):
        validate_config(tiny_config)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("output_score.factor", 0.0),
        ("output_score.factor", 1e9),
        ("generation.factors", [0.0, 1e9]),
        ("generation.temperature", 1e6),
        ("concepts.thresholds", [2.0]),
    ],
)
def test_out_of_range_numbers_are_refused_naming_the_field(tiny_config, field, value):
    section, key = field.split(".")
    tiny_config.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError, match=rf"config error at {re.escape(field)}"):
        validate_config(tiny_config)


@pytest.mark.workflow
def test_a_nan_in_a_yaml_file_stops_the_workflow_before_any_job(tmp_path, tiny_config):
    """`.nan` in the file: the workflow stops at parse time, naming the field."""
    tiny_config["generation"]["temperature"] = math.nan
    result = run_snakemake(tmp_path, tiny_config)
    assert result.returncode != 0
    assert "config error at generation.temperature: nan is not a finite number" in result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_integers_in_number_fields_become_floats(tiny_config):
    """10 and 10.0 are one value downstream."""
    tiny_config["output_score"]["factor"] = 10
    tiny_config["generation"]["factors"] = [0, 2]
    config = validate_config(tiny_config)
    assert type(config["output_score"]["factor"]) is float
    assert [type(f) for f in config["generation"]["factors"]] == [float, float]
    assert type(config["generation"]["max_new_tokens"]) is int


# --- 5. Honest staleness -------------------------------------------------------------------


SCORES = "results/tiny/layers/1/output_scores.parquet"


def _local_sae_run(tmp_path, tiny_config):
    sae_dir = tmp_path / "sae_layer_1"
    save_sae(sae_dir, 1, seed=1)
    tiny_config["sae"] = {"source": "local", "path": str(sae_dir)}
    tiny_config["layers"] = {1: {"features": [0, 3]}}
    result = run_snakemake(tmp_path, tiny_config, SCORES)
    assert result.returncode == 0, result.stderr[-3000:]
    return sae_dir


@pytest.mark.workflow
def test_changed_sae_weights_rerun_the_layer_even_with_an_older_mtime(
    tmp_path, tiny_config, monkeypatch
):
    """Weights replaced by a copy that keeps an old mtime (cp -p): the layer reruns; a
    missing weights file is a clear error before any job."""
    sae_dir = _local_sae_run(tmp_path, tiny_config)
    sae_json = tmp_path / "results/tiny/layers/1/sae.json"
    recorded = json.loads(sae_json.read_text())["weights"]
    assert recorded["sha256"] == _digest(sae_dir)
    weights = sae_dir / "sae_weights.safetensors"
    old = weights.stat()
    save_sae(tmp_path / "other", 1, seed=7)
    shutil.copyfile(tmp_path / "other/sae_weights.safetensors", weights)
    os.utime(weights, ns=(old.st_atime_ns, old.st_mtime_ns - 10**9))
    # A job that loads the SAE directly refuses the replaced file.
    with pytest.raises(SaeError, match="not the SAE sae.json describes .*--forcerun sae"):
        monkeypatch.chdir(tmp_path)  # the project root, where jobs run: paths are relative to it
        load_sae(json.loads(sae_json.read_text()))
    plan = run_snakemake(tmp_path, tiny_config, "-n", SCORES).stdout
    assert "rule sae:" in plan and "rule output_scores:" in plan
    result = run_snakemake(tmp_path, tiny_config, SCORES)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(sae_json.read_text())["weights"]["sha256"] == _digest(sae_dir)
    weights.unlink()
    result = run_snakemake(tmp_path, tiny_config, SCORES)
    assert result.returncode != 0
    assert f"sae.path: no sae_weights.safetensors in {sae_dir}" in result.stderr
    assert sae_json.is_file()  # nothing was removed


@pytest.mark.workflow
def test_a_truncated_parquet_stops_the_run_and_keeps_every_output(finished_run):
    """A truncated upstream file: the error names it, its rule and --forcerun; the good
    downstream files stay; `--forcerun <rule>` recovers."""
    workdir, config = finished_run
    out = workdir / "results/tiny/layers/1"
    lens = out / "logit_lens.parquet"
    lens.write_bytes(lens.read_bytes()[:100])
    downstream = {p: p.read_bytes() for p in out.glob("*_scores.parquet")}
    result = run_snakemake(workdir, config)
    assert result.returncode != 0
    assert f"{lens.relative_to(workdir)}: unreadable Parquet" in result.stderr
    assert "snakemake --forcerun logit_lens" in result.stderr
    assert all(p.read_bytes() == data for p, data in downstream.items())
    result = run_snakemake(workdir, config, "--forcerun", "logit_lens")
    assert result.returncode == 0, result.stderr[-3000:]
    assert pl.read_parquet(lens).height > 0


def test_a_job_reading_a_bad_parquet_names_the_file_and_the_rule(tmp_path, caplog):
    """A job run by hand (no workflow check before it): exit 2, the file, the rule that
    writes it and the command, and no output."""
    bad = tmp_path / "layers/3/gen_metrics.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"PAR1 not really")
    out = tmp_path / "layers/3/best_factors.parquet"
    args = ["best-factors", "--gen-metrics", str(bad), "--settings", "{}", "--out", str(out)]
    assert cli_main(args) == 2
    assert f"{bad}: unreadable Parquet" in caplog.text
    assert "written by rule gen_metrics: rerun it with `snakemake --forcerun gen_metrics`" in (
        caplog.text
    )
    assert not out.exists() and not list(out.parent.glob(".*tmp"))
    with pytest.raises(ArtifactError, match=r"logit_lens.parquet.*--forcerun logit_lens"):
        read_artifact(bad.with_name("logit_lens.parquet"))


@pytest.mark.workflow
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_cuda_device_without_cuda_is_a_config_error(tmp_path, tiny_config):
    """Caught by the config check (and check-config), not inside a job."""
    tiny_config["model"]["device"] = "cuda"
    result = run_snakemake(tmp_path, tiny_config)
    assert result.returncode != 0
    assert "model.device: cuda, but this machine has no CUDA device" in result.stderr
    assert not (tmp_path / "results").exists()
    with pytest.raises(ConfigError, match="model.device: cuda"):
        validate_config(tiny_config)
    # A SLURM login node has no GPU either: a dry run (planning only) does not check it.
    assert run_snakemake(tmp_path, tiny_config, "-n").returncode == 0


@pytest.mark.workflow
def test_a_model_json_whose_model_is_gone(finished_run, tmp_path):
    """model.json naming a directory that no longer exists: a clear error before the
    first job that would read it, and from a job loading it directly; --forcerun model
    recovers."""
    workdir, config = finished_run
    model_json = workdir / "results/tiny/model.json"
    info = json.loads(model_json.read_text())
    info["path"] = str(tmp_path / "gone")
    model_json.write_text(json.dumps(info))
    config["output_score"]["factor"] = 4.0  # a job that reads model.json must run
    scores = workdir / "results/tiny/layers/1/output_scores.parquet"
    before = scores.read_bytes()
    result = run_snakemake(workdir, config)
    assert result.returncode != 0
    assert "results/tiny/model.json: the model directory it records" in result.stderr
    assert "snakemake --forcerun model" in result.stderr
    assert scores.read_bytes() == before  # the old output was not removed
    with pytest.raises(ModelError, match="gone.* not found"):
        load_model(info["path"], device="cpu")
    # The target first: --forcerun takes every word after it as a rule or file to force.
    result = run_snakemake(workdir, config, "results/tiny/model.json", "--forcerun", "model")
    assert result.returncode == 0, result.stderr[-3000:]
    assert Path(json.loads(model_json.read_text())["path"]).is_dir()

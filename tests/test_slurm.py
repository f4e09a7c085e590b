"""The SLURM profile against a real one-node cluster (`.ci/slurm-up`, Debian's slurm-wlm).

Skipped where no cluster answers (`sinfo`); CI starts one before the tests."""

import os
import re
import shutil
import subprocess

import polars as pl
import pytest
import yaml

from tests.helpers import REPO, run_snakemake

TARGET = "results/tiny/layers/2/logit_lens.parquet"


def _cluster_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    result = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return result.returncode == 0 and "idle" in result.stdout


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(not _cluster_up(), reason="no SLURM cluster (.ci/slurm-up)"),
]


def _profile(workdir) -> str:
    """The shipped profile, with this cluster's partition and quick status checks."""
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = "debug"
    profile |= {
        "slurm-status-command": "squeue",  # no accounting database here, so no sacct
        "slurm-init-seconds-before-status-checks": 2,
        "seconds-between-status-checks": 3,
        "retries": 0,
        "latency-wait": 5,
        "slurm-keep-successful-logs": True,
    }
    directory = workdir / "profile"
    directory.mkdir()
    (directory / "config.yaml").write_text(yaml.safe_dump(profile))
    return str(directory)


def _sbatch_recorder(workdir, then: str) -> dict:
    """An `sbatch` first on PATH that logs its arguments, then runs `then`."""
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    log = workdir / "sbatch.log"
    script = bin_dir / "sbatch"
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\n{then}\n')
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "log": log}


@pytest.mark.workflow
def test_the_slurm_profile_runs_jobs_through_sbatch(tmp_path, tiny_config):
    config = {**tiny_config, "model": {**tiny_config["model"], "mem_mb": 200}}
    local, cluster = tmp_path / "local", tmp_path / "cluster"
    local.mkdir()
    cluster.mkdir()
    assert run_snakemake(local, config, TARGET).returncode == 0

    recorder = _sbatch_recorder(cluster, 'exec /usr/bin/sbatch "$@"')
    result = run_snakemake(
        cluster, config, TARGET, "--profile", _profile(cluster), env={"PATH": recorder["PATH"]}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    calls = recorder["log"].read_text().splitlines()
    rules = sorted(call.split("--comment rule_")[1].split()[0] for call in calls)
    assert rules == ["features_wildcards_2", "logit_lens_wildcards_2", "model", "sae_wildcards_2"]
    assert all("-p debug" in call and "--gpus" not in call for call in calls)  # device: cpu
    # SLURM gave each job an id, and each job's own log (kept) holds its rule's run.
    ids = re.findall(r"submitted with SLURM jobid (\d+)", result.stdout + result.stderr)
    assert len(set(ids)) == 4
    logs = {p.stem: p.read_text() for p in (cluster / ".snakemake/slurm_logs").rglob("*.log")}
    assert sorted(logs) == sorted(set(ids))
    assert any("rule logit_lens" in text for text in logs.values())
    assert pl.read_parquet(cluster / TARGET).equals(pl.read_parquet(local / TARGET))


@pytest.mark.workflow
def test_model_rules_ask_slurm_for_a_gpu_unless_pinned_to_cpu(tmp_path, tiny_config):
    """With model.device auto the model rules request `--gpus=1` (the plugin's `gpu`
    resource) and memory scaled by model.mem_mb; this cluster has no GPU, so the
    recorder answers instead of sbatch."""
    config = {**tiny_config, "model": {**tiny_config["model"], "device": "auto", "mem_mb": 500}}
    # The CPU rules before the model rule run locally, so one job is left to submit.
    features = "results/tiny/layers/2/features.parquet"
    assert run_snakemake(tmp_path, config, features, "results/tiny/model.json").returncode == 0
    recorder = _sbatch_recorder(tmp_path, "exit 1")
    profile = _profile(tmp_path)
    env = {"PATH": recorder["PATH"]}
    run_snakemake(tmp_path, config, TARGET, "--profile", profile, env=env)
    (call,) = set(recorder["log"].read_text().splitlines())
    assert "--comment rule_logit_lens_wildcards_2" in call
    assert "--gpus=1" in call and "--mem 3500" in call  # model.mem_mb 500 + 3000
    recorder["log"].unlink()
    run_snakemake(
        tmp_path, config, features, "--forcerun", "features", "--profile", profile, env=env
    )
    (call,) = set(recorder["log"].read_text().splitlines())
    assert "--comment rule_features_wildcards_2" in call
    assert "--gpus" not in call and "--mem 1000" in call


@pytest.mark.workflow
def test_independent_gpu_jobs_go_to_the_cluster_together(tmp_path, tiny_config):
    """The workflow profile (read on every run, its keys over the cluster profile's) must
    not serialize a cluster's GPU jobs: both layers' logit-lens jobs, ready at once, are
    submitted together. This cluster has no GPU (srun refuses the gres), so the recorder
    submits a 20 s stand-in for each, which leaves no output: a scheduler holding GPU jobs
    to one at a time would submit one, see it fail, and stop."""
    config = {**tiny_config, "model": {**tiny_config["model"], "device": "auto", "mem_mb": 200}}
    targets = [f"results/tiny/layers/{layer}/logit_lens.parquet" for layer in (1, 2)]
    ready = [
        f"results/tiny/layers/{layer}/{name}"
        for layer in (1, 2)
        for name in ("sae.json", "features.parquet")
    ]
    assert run_snakemake(tmp_path, config, *ready, "results/tiny/model.json").returncode == 0
    # the job as submitted (its name is how the plugin finds it), without the gres, and
    # a stand-in for its command
    stand_in = (
        'for a; do shift; case "$a" in --gpus=1) ;; --wrap=*) set -- "$@" "--wrap=sleep 20";;'
        ' *) set -- "$@" "$a";; esac; done\nexec /usr/bin/sbatch "$@"'
    )
    recorder = _sbatch_recorder(tmp_path, stand_in)
    env = {"PATH": recorder["PATH"]}
    run_snakemake(tmp_path, config, *targets, "--profile", _profile(tmp_path), env=env)
    calls = recorder["log"].read_text().splitlines()
    rules = sorted(call.split("--comment rule_")[1].split()[0] for call in calls)
    assert rules == ["logit_lens_wildcards_1", "logit_lens_wildcards_2"]
    assert all("--gpus=1" in call for call in calls)
    # the cluster profile's partition and runtime reach sbatch (the workflow profile's
    # default-resources would replace them)
    assert all("-p debug" in call and re.search(r"-t '?120\b", call) for call in calls)

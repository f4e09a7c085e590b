"""The workflow's DAG for `saesteer estimate`: jobs per rule of a Snakemake dry run, with
placeholder files standing in for the paper's inputs that are not here yet."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from saesteer.errors import ConfigError, SaesteerError


class MissingInput(SaesteerError):
    """The dry run stopped at one of the paper's inputs that is not here."""


def dag_jobs(configfile: Path, overrides: dict, targets: list[str] = ()) -> dict[str, int]:
    """Jobs per rule of a dry run of the workflow on `configfile` (for `targets`, or the
    whole run), every job planned as if nothing were made yet (with `overrides` standing in
    for input files not here yet)."""
    snakefile = Path("workflow/Snakefile")
    if not snakefile.is_file() or not shutil.which("snakemake"):
        raise MissingInput("run it from the workflow's folder (workflow/Snakefile), with snakemake")
    command = ["snakemake", "-n", "-F", "--quiet", "rules", "--configfile", str(configfile)]
    if overrides:
        command += ["--config", *(f"{k}={json.dumps(v)}" for k, v in overrides.items())]
    command += ["--", *targets] if targets else []
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ)
    if done.returncode:
        output = (done.stdout + done.stderr).splitlines()
        missing = [line for line in output if "make paper-data" in line]
        if missing:  # an input the estimate cannot stand in for: count the work, not jobs
            raise MissingInput(missing[0])
        raise ConfigError(f"snakemake -n on {configfile} failed:\n" + "\n".join(output[-20:]))
    jobs, table = {}, False
    for line in done.stdout.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            table = True
        elif table and len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            jobs[parts[0]] = int(parts[1])
    return jobs


def stand_ins(config: dict, features: dict[int, int], where: Path) -> dict:
    """Config overrides for the dry run: placeholder files for the paper's inputs that are
    not here, sized like the real ones (the DAG depends on layers, not on ids)."""
    overrides = {}
    spec = config.get("features")
    if isinstance(spec, dict) and "file" in spec and not Path(spec["file"]).is_file():
        path = where / "features.json"
        path.write_text(json.dumps({str(k): list(range(v)) for k, v in features.items()}))
        overrides["features"] = {"file": str(path)}
    instructions = (config.get("concepts") or {}).get("instructions")
    if isinstance(instructions, dict) and not Path(instructions["file"]).is_file():
        n = config["concepts"]["n_instructions"]
        path = where / "instructions.json"
        texts = {
            f"{k}_{i}": [f"placeholder {j}" for j in range(n)]
            for k, v in features.items()
            for i in range(v)
        }
        path.write_text(json.dumps(texts))
        overrides["concepts"] = {"instructions": {"file": str(path)}}
    concepts = config.get("concepts") or {}
    released = concepts.get("released") or {}
    if concepts.get("source") == "released" and not Path(released["data_dir"]).is_dir():
        # the release's layout: a file per folder the import reads, the best factors
        # naming the configured concept layers (what the config check reads)
        data = where / "data"
        best = {f"{layer}_0": 1.0 for layer in concepts["layers"]}
        for name, content in [
            (f"generated_texts/{released['model_dir']}/m_generations_cache_1_0.json", {}),
            ("steering_factors/m_best_steering_factors.json", best),
            ("axbench_instructions/m.json", {}),
            ("axbench_llm_scores/m.json", {}),
        ]:
            (data / name).parent.mkdir(parents=True, exist_ok=True)
            (data / name).write_text(json.dumps(content))
        overrides.setdefault("concepts", {})["released"] = {
            **released,
            "data_dir": str(data),
        }
    return overrides

"""The same verdicts on any machine: rerun a config under several seeds of feature sampling
and SAE training, and compare each finding's verdict across them.

A seed's run is the config with `features.seed` and every `sae.train.seed` (top level and
per layer) set to the seed, under the run name `<run>-seed<seed>`; the seed the config
already uses is the config's own run, unchanged (its results are reused when present).
Each run goes through Snakemake like any other, from the repository root."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from saesteer.config import read_config, resolve_config
from saesteer.errors import ConfigError
from saesteer.io import atomic_path, write_json


def seeded_config(config: dict, seed: int) -> dict:
    """`config` (as read from its file) with every sampling and training seed set to
    `seed`; its run name gets a `-seed<seed>` suffix unless nothing changed."""
    seeded = copy.deepcopy(config)

    def set_seeds(section: dict) -> None:
        if isinstance(section.get("features"), dict) and "random" in section["features"]:
            section["features"]["seed"] = seed
        train = section.get("sae", {}).get("train")
        if isinstance(train, dict):
            train["seed"] = seed

    set_seeds(seeded)
    for layer in (seeded.get("layers") or {}).values():
        if isinstance(layer, dict):
            set_seeds(layer)
    if _resolved(seeded) != _resolved(config):
        seeded["run"] = f"{config['run']}-seed{seed}"
    return seeded


def _resolved(config: dict) -> dict:
    return resolve_config(copy.deepcopy(config))


def verdict_table(findings: dict[int, dict]) -> dict:
    """finding -> {seed: verdict, value, low, high, n}, and whether each finding's verdict
    is the same under every seed."""
    rows: dict[str, dict] = {}
    for seed, found in sorted(findings.items()):
        for v in found["verdicts"]:
            row = rows.setdefault(v["finding"], {"paper": v["paper"], "seeds": {}})
            row["seeds"][str(seed)] = {k: v[k] for k in ("verdict", "value", "low", "high", "n")}
    for row in rows.values():
        row["agree"] = len({s["verdict"] for s in row["seeds"].values()}) == 1
    return rows


def render(table: dict) -> str:
    seeds = sorted({s for row in table.values() for s in row["seeds"]}, key=int)

    def cell(v) -> str:
        if v is None:
            return "-"
        span = "" if v["low"] is None else f" [{v['low']:.3g}, {v['high']:.3g}]"
        value = "n/a" if v["value"] is None else f"{v['value']:.3g}"
        return f"{v['verdict']} {value}{span}"

    rows = [
        [name, *(cell(row["seeds"].get(s)) for s in seeds), "yes" if row["agree"] else "NO"]
        for name, row in table.items()
    ]
    header = ["finding", *(f"seed {s}" for s in seeds), "same"]
    widths = [max(len(r[i]) for r in [header, *rows]) + 2 for i in range(len(header))]
    return "\n".join(
        "".join(text.ljust(width) for text, width in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    )


def run_seeds(
    config_path: Path, seeds: Sequence[int], cores: str = "all", out_dir: Path | None = None
) -> dict:
    """Run the config under each seed (Snakemake, one after another) and return the
    verdict table; written to results/robustness/<run>.json."""
    config = read_config(config_path)
    if not isinstance(config, dict) or "run" not in config:
        raise ConfigError(f"{config_path}: no run name")
    out_dir = out_dir or Path("results/robustness")
    found = {}
    for seed in seeds:
        seeded = seeded_config(config, seed)
        path = config_path
        if seeded["run"] != config["run"]:
            path = out_dir / f"{seeded['run']}.yaml"
            with atomic_path(path) as tmp:
                tmp.write_text(yaml.safe_dump(seeded, sort_keys=True))
        print(f"== seed {seed}: run {seeded['run']} ({path})", file=sys.stderr, flush=True)
        subprocess.run(["snakemake", "--cores", cores, "--configfile", str(path)], check=True)
        found[seed] = json.loads(Path(f"results/{seeded['run']}/findings.json").read_text())
    table = verdict_table(found)
    write_json(
        {"config": str(config_path), "seeds": list(seeds), "findings": table},
        out_dir / f"{config['run']}.json",
    )
    return table

"""The rates `saesteer estimate` projects with, from what `make bench` and a run measured.

- each path's achieved GFLOP/s and share of its matmul roofline: the benchmarks' JSON
  (`--out`), averaged over their layers;
- SAE training: the run's `train_sae` job times against the FLOPs the estimate counts;
- start-up: per rule, what a job of a finished run took beyond the compute the estimate
  counts for it (loading the model, reading files); the rules it counts none for (the
  corpus, tokenizing, reading and writing tables) at their whole time.

    python benchmarks/rates.py --bench benchmarks/out --run-config config/config.yaml \\
        --out src/saesteer/rates.json
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
from pathlib import Path

import torch
from common import matmul_gflops

from saesteer.config import read_config, resolve_config
from saesteer.costs import model_shapes
from saesteer.estimate import features_per_layer, workload

# bench --out file -> the estimate's path
BENCHES = {
    "output_score": "output_score",
    "mining": "mining",
    "generation": "generation",
    "concepts": "concepts",
    "perplexity": "perplexity",
}


def path_rate(result: dict) -> dict:
    rows = result.get("layers", [result])
    achieved = [
        next(v for k, v in row.items() if k in ("fast_gflops", "batched_gflops")) for row in rows
    ]
    peaks = [row["matmul_peak_gflops"] for row in rows]
    return {
        "gflops": round(statistics.mean(achieved), 1),
        "share": round(statistics.mean(a / p for a, p in zip(achieved, peaks, strict=True)), 3),
    }


def job_seconds(run_dir: Path) -> dict[str, list[float]]:
    """Each rule's job times (the `s` column of Snakemake's benchmark files)."""
    out: dict[str, list[float]] = {}
    for tsv in sorted(run_dir.glob("benchmarks/**/*.tsv")):
        rule = tsv.parent.name if tsv.parent.name != "benchmarks" else tsv.stem
        with tsv.open() as f:
            out.setdefault(rule, []).append(float(next(csv.DictReader(f, delimiter="\t"))["s"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, required=True, help="folder of <bench>.json")
    parser.add_argument("--run-config", type=Path, required=True, help="a finished run")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    paths = {
        path: path_rate(json.loads((args.bench / f"{name}.json").read_text()))
        for name, path in BENCHES.items()
    }
    config = resolve_config(read_config(args.run_config))
    layers = sorted(int(k) for k in config["layers"])
    stages = workload(config, {layer: features_per_layer(config, layer, None) for layer in layers})
    times = job_seconds(Path("results") / config["run"])
    if "train_sae" not in stages or "train_sae" not in times:
        raise SystemExit(f"{args.run_config}: rates need a finished run that trains its SAEs")
    train = stages["train_sae"]
    train_gflops = train.flops / sum(times["train_sae"]) / 1e9
    d_sae = config["sae"]["train"]["d_sae"]
    d_model = model_shapes(config["model"]["source"]).d
    peak = matmul_gflops(config["sae"]["train"]["batch_size_tokens"], d_model, d_sae, "cpu")
    paths["training"] = {"gflops": round(train_gflops, 1), "share": round(train_gflops / peak, 3)}
    startup = {}
    for rule, seconds in times.items():
        stage = stages.get(rule)
        rate = paths.get(stage.path) if stage else None
        compute = stage.flops / len(seconds) / (rate["gflops"] * 1e9) if rate else 0.0
        left = statistics.mean(seconds) - compute
        if left < 0:  # the estimate counts more compute than the job took
            print(f"{rule}: estimated compute {compute:.1f} s > measured {left + compute:.1f} s")
        startup[rule] = round(max(0.0, left), 2)
    rates = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"threads (measured by make bench and the {config['run']} run)",
        "startup_s": startup,
        "paths": paths,
    }
    args.out.write_text(json.dumps(rates, indent=2) + "\n")
    print(json.dumps(rates, indent=2))


if __name__ == "__main__":
    main()

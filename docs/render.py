"""The docs' numbers from committed run snapshots, never by hand.

    python docs/render.py snapshot results/<run> [--wall-seconds S]   # copy a finished run
    python docs/render.py snapshot-robustness results/robustness/<run>.json
    python docs/render.py            # rewrite every snapshot block of README.md and docs/*.md
    python docs/render.py --check    # exit 1 if a block differs from its snapshot (a test)

A snapshot is `docs/runs/<run>/`: the run's findings.json and manifest.json, its concept
table and SAE sweep table as JSON when it has them, and timing.json (job seconds per rule
from the run's benchmarks; the wall time as measured with /usr/bin/time, given here).
A block in a Markdown file is the text between `<!-- snapshot: NAME -->` and
`<!-- /snapshot -->`; NAME is a renderer below, and its argument the run it reads.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "docs" / "runs"
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(
    r"(<!-- snapshot: (?P<name>[a-z-]+) (?P<run>[A-Za-z0-9_.-]+) -->\n)(?P<body>.*?)"
    r"(<!-- /snapshot -->)",
    re.S,
)


def num(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def est(value, low, high, n=None, digits: int = 3) -> str:
    text = num(value, digits)
    if low is not None and high is not None:
        text += f" [{num(low, digits)}, {num(high, digits)}]"
    return text if n is None else f"{text} (n={n})"


def pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _json(run: str, name: str):
    path = RUNS / run / name
    if not path.is_file():
        raise SystemExit(f"{path}: no snapshot (python docs/render.py snapshot results/{run})")
    return json.loads(path.read_text())


def verdicts(run: str) -> str:
    found = _json(run, "findings.json")
    rows = [
        [
            v["paper"],
            v["statistic"],
            est(v["value"], v["low"], v["high"], v["n"]),
            f"**{v['verdict']}**",
        ]
        for v in found["verdicts"]
    ]
    return table(["the paper finds", "measured here", "value [95% interval] (n)", "verdict"], rows)


def layers(run: str) -> str:
    found = _json(run, "findings.json")
    rows = [
        [
            str(r["layer"]),
            num(r["depth"], 2),
            f"{num(r['input_score_mean'])} ({num(r['input_score_median'])})",
            num(r["input_score_chance"]),
            est(
                r["share_above_chance"],
                r["share_above_chance_low"],
                r["share_above_chance_high"],
                r["n_scored_input"],
            ),
            f"{num(r['output_score_mean'])} ({num(r['output_score_median'])})",
            num(r.get("variance_explained")),
            num(r.get("ce_loss_recovered")),
            num(r.get("l0")),
            pct(r.get("dead_fraction")),
            pct(r.get("silent_fraction")),
        ]
        for r in found["layers"]
    ]
    header = [
        "block",
        "depth",
        "input score mean (median)",
        "chance level",
        "share above chance [95%] (n scored)",
        "output score mean (median)",
        "VE",
        "CE recovered",
        "L0",
        "dead (train)",
        "silent (held out)",
    ]
    return table(header, rows)


def thresholds(run: str) -> str:
    found = _json(run, "findings.json")
    rows = [
        [
            "all steered",
            "—",
            str(found["n_steered"]),
            est(found["mean_gen_success_20"], *found["mean_gen_success_20_interval"]),
            "—",
            "—",
        ]
    ]
    for r in found["thresholds"]:
        rows.append(
            [
                f"output score ≥ {r['threshold']:g}",
                f"{r['n_kept']} ({pct(r['kept_fraction'])})",
                str(r["n_steered_kept"]),
                est(
                    r["mean_gen_success_20"],
                    r["mean_gen_success_20_low"],
                    r["mean_gen_success_20_high"],
                ),
                est(r["gain"], r["gain_low"], r["gain_high"]),
                est(r["ratio"], r["ratio_low"], r["ratio_high"]),
            ]
        )
    header = ["features", "kept", "steered", "GenSuccess@20 [95%]", "gain [95%]", "ratio [95%]"]
    note = (
        f"\n{found['n_counted']} live features of {found['n_features']} counted; "
        f"{found['n_no_effective_factor']} of the {found['n_steered']} steered have no effective "
        f"factor (GenSuccess@20 0 at every factor). Intervals: {found['bootstrap']['resamples']} "
        f"bootstrap resamples, seed {found['bootstrap']['seed']}.\n"
    )
    return table(header, rows) + note


def concepts(run: str) -> str:
    rows = _json(run, "concept_table.json")
    out = []
    for r in rows:
        gain = ""
        if r["gain_over_unfiltered"] is not None:
            gain = est(r["gain_over_unfiltered"], r["gain_low"], r["gain_high"])
        out.append(
            [
                r["row"],
                str(r["layer"]),
                est(r["score"], r["score_low"], r["score_high"], r["n_concepts"]),
                gain or "—",
            ]
        )
    judge = rows[0]["judge"] if rows else "?"
    proxy = " (the offline proxy judge, not an LLM)" if rows and rows[0]["judge_proxy"] else ""
    return table(
        ["method", "block", "score [95%] (n concepts)", "gain over no filter [95%]"], out
    ) + (f"\nJudge: {judge}{proxy}.\n")


def sweep(run: str) -> str:
    rows = _json(run, "sae_sweep.json")
    out = [
        [
            r["variant"],
            str(r["layer"]),
            num(r["variance_explained"]),
            num(r["ce_loss_recovered"]),
            pct(r["dead_fraction"]),
            pct(r.get("silent_fraction")),
            f"{r['n_live']}/{r['n_features']}",
            num(r["density_median"]),
            f"{num(r['input_score_median'])} / {num(r['input_score_mean'])}",
            est(r["share_above_chance"], r["share_above_chance_low"], r["share_above_chance_high"]),
            str(r["n_input_above_half"]),
            num(r["output_score_median"]),
            str(r["n_output_at_least_0_1"]),
            num(r["output_score_median_not_live"]),
            "**yes**" if r["passes"] else "no",
        ]
        for r in rows
    ]
    header = [
        "variant",
        "block",
        "VE",
        "CE recovered",
        "dead (train)",
        "silent (held out)",
        "live / sampled",
        "density median",
        "input median / mean",
        "above chance [95%]",
        "input > 0.5",
        "output median",
        "output ≥ 0.1",
        "output median, not live",
        "passes",
    ]
    seen, notes = set(), []
    for r in rows:
        if r["failed_gates"] and r["variant"] not in seen:
            seen.add(r["variant"])
            notes.append(f"- `{r['variant']}` fails: {r['failed_gates']}")
    return table(header, out) + ("\n" + "\n".join(notes) + "\n" if notes else "")


def robustness(run: str) -> str:
    data = _json("robustness", f"{run}.json")
    seeds = [str(s) for s in data["seeds"]]
    rows = []
    for row in data["findings"].values():
        cells = [row["paper"]]
        for s in seeds:
            v = row["seeds"].get(s)
            cells.append(
                "—"
                if v is None
                else f"{v['verdict']}: {est(v['value'], v['low'], v['high'], v['n'])}"
            )
        cells.append("yes" if row["agree"] else "**no**")
        rows.append(cells)
    return table(["the paper finds", *[f"seed {s}" for s in seeds], "same verdict"], rows)


def timing(run: str) -> str:
    data = _json(run, "timing.json")
    rules = ", ".join(f"{rule} {num(s, 3)}" for rule, s in data["job_seconds"].items())
    wall = data.get("wall_seconds")
    wall_text = "not measured" if wall is None else f"{wall / 60:.1f} min ({wall:.0f} s)"
    return (
        f"Wall time {wall_text}; {data['jobs']} jobs, "
        f"{num(data['total_job_seconds'], 4)} job-seconds ({data['machine']['cpu']}, "
        f"{data['machine']['cores']} cores). By rule (job seconds, "
        f"summed over layers): {rules}.\n"
    )


def power(run: str) -> str:
    """Would this run's design see the paper's effect? Each threshold's gain interval
    half-width (1.96 standard errors) against the paper's gain: +0.4 at 0.01, and at 0.1
    the low end of "2-3x" (a ratio of 2: a gain equal to the mean of all features)."""
    found = _json(run, "findings.json")
    paper = {0.01: 0.4, 0.1: found["mean_gen_success_20"]}
    rows = []
    for r in found["thresholds"]:
        if r["threshold"] not in paper or r["gain_low"] is None:
            continue
        half = (r["gain_high"] - r["gain_low"]) / 2
        rows.append(
            [
                f"{r['threshold']:g}",
                str(r["n_steered_kept"]),
                num(half),
                num(paper[r["threshold"]]),
                "yes" if paper[r["threshold"]] > half else "**no**",
            ]
        )
    header = [
        "output score ≥",
        "steered kept",
        "gain interval half-width",
        "the paper's gain",
        "an interval around it would exclude 0",
    ]
    return table(header, rows)


RENDERERS: dict[str, Callable[[str], str]] = {
    "power": power,
    "verdicts": verdicts,
    "layers": layers,
    "thresholds": thresholds,
    "concepts": concepts,
    "sweep": sweep,
    "robustness": robustness,
    "timing": timing,
}


def rendered(text: str) -> str:
    def fill(match: re.Match) -> str:
        name, run = match["name"], match["run"]
        if name not in RENDERERS:
            raise SystemExit(f"unknown snapshot block {name!r} (known: {sorted(RENDERERS)})")
        return match.group(1) + RENDERERS[name](run) + match.group(5)

    return BLOCK.sub(fill, text)


def snapshot(run_dir: Path, wall_seconds: float | None, plots: list[str] = ()) -> Path:
    """Copy what the docs quote from a finished run into docs/runs/<run>/, with the named
    plots of results/<run>/plots/ that the docs show."""
    run = run_dir.name
    target = RUNS / run
    target.mkdir(parents=True, exist_ok=True)
    for source, name in (
        ("findings.json", "findings.json"),
        ("manifest.json", "manifest.json"),
        ("sweep/sae_sweep.png", "sae_sweep.png"),
    ):
        if (run_dir / source).is_file():
            shutil.copyfile(run_dir / source, target / name)
    for plot in plots:
        shutil.copyfile(run_dir / "plots" / f"{plot}.png", target / f"{plot}.png")
    for source, name in (
        ("concepts/concept_table.parquet", "concept_table.json"),
        ("sweep/sae_sweep.parquet", "sae_sweep.json"),
    ):
        if (run_dir / source).is_file():
            rows = pl.read_parquet(run_dir / source).to_dicts()
            (target / name).write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")
    seconds: dict[str, float] = {}
    jobs = 0
    for tsv in sorted((run_dir / "benchmarks").rglob("*.tsv")):
        rule = tsv.parent.name if tsv.parent.name != "benchmarks" else tsv.stem
        with tsv.open() as f:
            for row in csv.DictReader(f, delimiter="\t"):
                seconds[rule] = seconds.get(rule, 0.0) + float(row["s"])
                jobs += 1
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    timing = {
        "wall_seconds": wall_seconds,
        "jobs": jobs,
        "total_job_seconds": round(sum(seconds.values()), 1),
        "job_seconds": {k: round(v, 1) for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])},
        "machine": {k: manifest.get("machine", {}).get(k) for k in ("cpu", "cores")},
    }
    (target / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command",
        nargs="?",
        choices=["render", "snapshot", "snapshot-robustness"],
        default="render",
    )
    parser.add_argument("path", nargs="?", type=Path)
    parser.add_argument("--wall-seconds", type=float)
    parser.add_argument("--plots", nargs="*", default=[], help="plots the docs show (names)")
    parser.add_argument(
        "--check", action="store_true", help="fail if a block differs from its snapshot"
    )
    args = parser.parse_args(argv)
    if args.command == "snapshot":
        print(snapshot(args.path, args.wall_seconds, args.plots))
        return 0
    if args.command == "snapshot-robustness":
        (RUNS / "robustness").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.path, RUNS / "robustness" / args.path.name)
        return 0
    stale = []
    for path in FILES:
        text = path.read_text()
        new = rendered(text)
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        print(
            f"{names}: a snapshot block differs from docs/runs/ (python docs/render.py)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

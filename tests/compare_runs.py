"""Compare two runs' Parquet artifacts frame by frame (a refactor's guard: the same config
run before and after must give equal frames).

    python tests/compare_runs.py results-before/gemma3-demo results/gemma3-demo

Prints each file that differs (or exists on one side only) and exits 1 if any does."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl


def compare(before: Path, after: Path) -> list[str]:
    names = {p.relative_to(before) for p in before.rglob("*.parquet")}
    names |= {p.relative_to(after) for p in after.rglob("*.parquet")}
    problems = []
    for name in sorted(names):
        a, b = before / name, after / name
        if not (a.is_file() and b.is_file()):
            problems.append(f"{name}: only in {'after' if b.is_file() else 'before'}")
        elif not pl.read_parquet(a).equals(pl.read_parquet(b)):
            problems.append(f"{name}: frames differ")
    print(f"{len(names)} Parquet files, {len(problems)} differ")
    return problems


if __name__ == "__main__":
    differ = compare(Path(sys.argv[1]), Path(sys.argv[2]))
    print("\n".join(differ))
    sys.exit(1 if differ else 0)

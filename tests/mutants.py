"""Deliberate bugs the test suite must catch: each is applied to the source, the unit tests
run, and the tests that fail are listed; the source is restored whatever happens.

    python tests/mutants.py [name ...]

The Snakemake workflow tests are left out (they take most of the suite's 40 minutes); a
mutant that only they could catch would show here as "survived"."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    before: str
    after: str


MUTANTS = [
    Mutant(
        "steering position off by one (the second-to-last token of a prompt)",
        "src/saesteer/steering.py",
        "        last = hidden[:, -1]\n"
        "        steered = add_steering(last, latent_max(sae, last), directions, factors)\n"
        "        return torch.cat([hidden[:, :-1], steered[:, None]], dim=1)",
        # one-token forwards (cached decoding) still steer their only token: no crash
        "        at = -2 if hidden.shape[1] > 1 else -1\n"
        "        last = hidden[:, at]\n"
        "        steered = add_steering(last, latent_max(sae, last), directions, factors)\n"
        "        return torch.cat("
        "[hidden[:, :at], steered[:, None], hidden[:, at:][:, 1:]], dim=1)",
    ),
    Mutant(
        "GenSuccess@k counts rank <= k (k+1 tokens)",
        "src/saesteer/gen_metrics.py",
        '**{f"hits_{k}": (pl.col("rank") < k).sum() for k in ks},',
        '**{f"hits_{k}": (pl.col("rank") <= k).sum() for k in ks},',
    ),
    Mutant(
        "best factor: a tie goes to the larger factor",
        "src/saesteer/best_factor.py",
        "descending=[False, True, False]",
        "descending=[False, True, True]",
    ),
    Mutant(
        "Table 1 keeps output score > t instead of >= t",
        "src/saesteer/concepts/evaluation.py",
        'kept = kept.filter(pl.col("output_score") >= threshold)',
        'kept = kept.filter(pl.col("output_score") > threshold)',
    ),
    Mutant(
        "attention-sink filter at 100x the median norm instead of 10x",
        "src/saesteer/hooks.py",
        "keep &= norms <= factor * norms[keep].median()",
        "keep &= norms <= 100 * factor * norms[keep].median()",
    ),
]


def failing_tests() -> list[str]:
    # The unit tiers only: the Snakemake runs take too long for five mutants.
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "not slow and not workflow"]
    cmd += ["-p", "no:cacheprovider"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, flags=re.M)
    if result.returncode not in (0, 1) or (result.returncode == 1 and not failed):
        raise SystemExit(f"pytest could not run (exit {result.returncode}):\n{result.stdout}")
    return failed


def run(mutant: Mutant, baseline: set[str]) -> tuple[list[str], float]:
    """The tests that fail with `mutant` in place and pass without it. The source file is
    rewritten in place (and restored): run this alone, not beside another test run."""
    path = REPO / mutant.file
    original = path.read_text()
    if original.count(mutant.before) != 1:
        raise SystemExit(f"{mutant.file}: the code to mutate is not there once: {mutant.name}")
    start = time.perf_counter()
    try:
        path.write_text(original.replace(mutant.before, mutant.after))
        failed = failing_tests()
    finally:
        path.write_text(original)
    return [t for t in failed if t not in baseline], time.perf_counter() - start


def main(names: list[str]) -> int:
    baseline = set(failing_tests())
    print(f"## no mutant: {len(baseline)} failing" + "".join(f"\n  {t}" for t in baseline))
    survived = 0
    for mutant in MUTANTS:
        if names and not any(n in mutant.name for n in names):
            continue
        failed, seconds = run(mutant, baseline)
        survived += not failed
        print(f"## {mutant.name} ({mutant.file}): {len(failed)} failing, {seconds:.0f} s")
        print("\n".join(f"  {test}" for test in failed) or "  SURVIVED: no test failed")
        sys.stdout.flush()
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

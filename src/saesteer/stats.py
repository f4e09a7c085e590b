"""Seeded percentile-bootstrap intervals, and verdicts of a run's findings against the
paper's.

Every interval resamples the units a finding is about (features, or concepts) with
replacement, B times from one seeded generator, and reads the 2.5th and 97.5th
percentiles of the statistic over the resamples where it is defined. Steered features are
resampled within their (layer, output-score stratum): that is how they were drawn
(`steer_selection`), and it keeps each resample's stratum weights N_h / n_h valid.

A verdict compares an interval with the paper's claim, by a rule written beside it:
`agrees` when the whole interval is on the paper's side, `disagrees` when the whole
interval is on the other side, and `inconclusive` otherwise (and when the run cannot
measure the claim, e.g. too few features on one side).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

LEVEL = 0.95
VERDICTS = ("agrees", "inconclusive", "disagrees")


@dataclass(frozen=True)
class BootstrapSettings:
    """The `findings` config block (defaults in the schema)."""

    SECTIONS: ClassVar = ("findings",)
    bootstrap: int  # resamples B
    seed: int
    live_only: bool  # findings count features that fired on >= min_examples examples


@dataclass(frozen=True)
class Estimate:
    """A statistic on the run's data, its bootstrap interval and the n it rests on."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def as_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def resample_indices(groups: np.ndarray, bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """[B, n] row indices: each resample draws, within every group, as many rows as the
    group has, with replacement."""
    groups = np.asarray(groups)
    out = np.empty((bootstrap, len(groups)), dtype=np.int64)
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        out[:, members] = rng.choice(members, size=(bootstrap, len(members)), replace=True)
    return out


def interval(
    statistic: Callable[[np.ndarray], float | None],
    groups: Sequence,
    settings: BootstrapSettings,
    n: int | None = None,
) -> Estimate:
    """`statistic(indices)` on all rows (indices 0..n-1) and its percentile interval over
    `settings.bootstrap` stratified resamples of the rows (`groups` labels each row's
    stratum). A resample where the statistic is undefined (None or NaN) is skipped; with
    fewer than half of them defined the interval is None."""
    groups = np.asarray(groups)
    rows = np.arange(len(groups))
    value = finite_or_none(statistic(rows)) if len(rows) else None
    n = len(rows) if n is None else n
    if value is None or len(rows) < 2:
        return Estimate(value, None, None, n)
    rng = np.random.default_rng(settings.seed)
    resampled = resample_indices(groups, settings.bootstrap, rng)
    draws = [finite_or_none(statistic(i)) for i in resampled]
    draws = np.array([d for d in draws if d is not None])
    if len(draws) < settings.bootstrap / 2:
        return Estimate(value, None, None, n)
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Estimate(value, float(low), float(high), n)


def finite_or_none(value) -> float | None:
    """The value as a float, or None where it is missing or not finite (NaN, inf)."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> float | None:
    total = weights.sum()
    return float((values * weights).sum() / total) if total > 0 else None


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank (as Spearman's correlation needs)."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    rank = np.empty(len(values))
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            rank[order[start:end]] = (start + end + 1) / 2
            start = end
    return rank


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rank correlation; None when either side is constant or n < 3."""
    if len(x) < 3:
        return None
    rx, ry = ranks(np.asarray(x, float)), ranks(np.asarray(y, float))
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


@dataclass(frozen=True)
class Claim:
    """One of the paper's findings, as a statistic on our data compared with a reference:
    the paper's side is `above` the reference (or below it, when `above` is False)."""

    finding: str
    paper: str
    statistic: str
    reference: float
    above: bool = True
    min_n: int = 2

    def rule(self) -> str:
        side, other = (">", "<") if self.above else ("<", ">")
        return (
            f"agrees if the {int(LEVEL * 100)}% interval of the {self.statistic} lies "
            f"wholly {side} {self.reference:g}; disagrees if it lies wholly {other} "
            f"{self.reference:g}; otherwise inconclusive (also with n < {self.min_n})"
        )

    def verdict(self, estimate: Estimate) -> dict:
        low, high = estimate.low, estimate.high
        if estimate.n < self.min_n or low is None or high is None:
            verdict = "inconclusive"
            why = f"not measurable on this run: n = {estimate.n}, it needs {self.min_n}"
            if estimate.n >= self.min_n:
                why = "not measurable on this run: no interval"
        else:
            beyond = low > self.reference if self.above else high < self.reference
            against = high < self.reference if self.above else low > self.reference
            verdict = "agrees" if beyond else "disagrees" if against else "inconclusive"
            why = "the interval includes the reference" if verdict == "inconclusive" else ""
        return {
            "finding": self.finding,
            "paper": self.paper,
            "statistic": self.statistic,
            "reference": self.reference,
            **estimate.as_dict(),
            "rule": self.rule(),
            "verdict": verdict,
            "why": why,
        }

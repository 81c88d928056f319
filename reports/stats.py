"""Exact percentiles and the confidence intervals the verdicts rest on.

Percentiles are order statistics (the nearest-rank definition: the smallest sample with at least
q % of the samples at or below it), so they are values that were actually observed, and their
confidence intervals need no assumption about the latency distribution: the number of samples
below the true q-th percentile is Binomial(n, q/100), which gives the ranks bracketing it
(Hahn & Meeker, "Statistical Intervals", 2nd ed., section 5.2). Proportions use Wilson's
interval (hit rates, many lookups) or Clopper-Pearson's exact one (error rates, where the
count is often 0 and the normal approximations break down).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray
from scipy import stats as sps

__all__ = [
    "Interval",
    "clopper_pearson",
    "nearest_rank",
    "percentile_ci",
    "percentile_rank_bounds",
    "percentiles",
    "wilson",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval; an end is None when the data cannot bound
    it (too few samples for that percentile)."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    confidence: float = 0.95


def nearest_rank(n: int, q: float) -> int:
    """The 1-based rank of the q-th percentile (0 < q < 100) of n sorted samples:
    ceil(q / 100 * n) clamped to [1, n], in exact rational arithmetic (q as written in
    decimal), since floating point puts 95 / 100 * 100 at 95.00000000000001 and an epsilon
    that absorbs it picks the wrong rank once n reaches tens of millions."""
    return max(1, min(n, math.ceil(Fraction(str(q)) * n / 100)))


def percentiles(sorted_values: FloatArray, qs: tuple[float, ...]) -> list[float | None]:
    """Exact (nearest-rank) percentiles of an already sorted array; None when it is empty."""
    n = len(sorted_values)
    if n == 0:
        return [None for _ in qs]
    return [float(sorted_values[nearest_rank(n, q) - 1]) for q in qs]


def percentile_rank_bounds(n: int, q: float, confidence: float = 0.95) -> tuple[int, int]:
    """1-based ranks (lo, hi) with P(X_(lo) <= true percentile < X_(hi)) >= confidence.

    lo is 0 when no sample bounds it from below, hi is n + 1 when none bounds it from above.
    """
    alpha = 1.0 - confidence
    p = q / 100.0
    lo = int(sps.binom.ppf(alpha / 2.0, n, p))
    hi = int(sps.binom.ppf(1.0 - alpha / 2.0, n, p)) + 1
    return max(lo, 0), min(hi, n + 1)


def percentile_ci(sorted_values: FloatArray, q: float, confidence: float = 0.95) -> Interval:
    """The q-th percentile of sorted samples with its distribution-free confidence interval."""
    n = len(sorted_values)
    if n == 0:
        return Interval(None, None, None, 0, confidence)
    value = float(sorted_values[nearest_rank(n, q) - 1])
    lo, hi = percentile_rank_bounds(n, q, confidence)
    low = float(sorted_values[lo - 1]) if lo >= 1 else None
    high = float(sorted_values[hi - 1]) if hi <= n else None
    return Interval(value, low, high, n, confidence)


def wilson(k: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval of the proportion k / n."""
    if n <= 0:
        return Interval(None, None, None, 0, confidence)
    z = float(sps.norm.ppf(1.0 - (1.0 - confidence) / 2.0))
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), n, confidence)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> Interval:
    """Clopper-Pearson (exact binomial) interval of the proportion k / n."""
    if n <= 0:
        return Interval(None, None, None, 0, confidence)
    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else float(sps.beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(sps.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return Interval(k / n, low, high, n, confidence)

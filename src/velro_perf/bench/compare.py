"""Judging pytest-benchmark JSON: the tier budgets on the rounds' p99, and a run against a
baseline with a one-sided Mann-Whitney U test and a minimum effect (velro_perf/bench/__init__.py
says why both)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from velro_perf.gate import load_budgets
from velro_perf.reports.benchjson import base_name
from velro_perf.reports.runfiles import BudgetVerdict
from velro_perf.reports.stats import percentiles

__all__ = [
    "ALPHA",
    "MIN_EFFECT",
    "Change",
    "TierBudgetResult",
    "anchor_ratios",
    "benchmarks_of",
    "compare_benchmarks",
    "judge_tier_budgets",
    "median_ms",
    "percentile_ms",
    "rounds_s",
]

ALPHA = 0.01
MIN_EFFECT = 0.10


@dataclass(frozen=True)
class TierBudgetResult:
    """One microbenchmark budget judged on one benchmark, on the nearest-rank percentile of
    its rounds (the report's reports.benchjson gives the same budgets a confidence interval)."""

    budget_id: str
    benchmark: str
    percentile: float
    measured_ms: float | None
    max_ms: float
    rounds: int

    @property
    def verdict(self) -> BudgetVerdict:
        if self.measured_ms is None:
            return BudgetVerdict.NO_DATA
        return BudgetVerdict.PASS if self.measured_ms < self.max_ms else BudgetVerdict.FAIL


@dataclass(frozen=True)
class Change:
    """One benchmark in the baseline and the current run."""

    name: str
    base_median_ms: float | None
    median_ms: float | None
    p_value: float | None
    verdict: str  # regression | faster | unchanged | new | gone | too_few_rounds
    anchor: str | None = None
    anchor_ratio: float | None = None  # the anchor's median now over its median then

    @property
    def ratio(self) -> float | None:
        if not self.base_median_ms or self.median_ms is None:
            return None
        return self.median_ms / self.base_median_ms


# -- reading pytest-benchmark JSON -----------------------------------------------------------


def benchmarks_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in data.get("benchmarks", []) if isinstance(b, dict)]


def rounds_s(bench: dict[str, Any]) -> list[float]:
    raw = (bench.get("stats") or {}).get("data")
    return [float(x) for x in raw] if isinstance(raw, list) else []


def median_ms(bench: dict[str, Any]) -> float | None:
    median = (bench.get("stats") or {}).get("median")
    return float(median) * 1e3 if isinstance(median, int | float) else None


def percentile_ms(bench: dict[str, Any], q: float) -> float | None:
    """The q-th percentile of a benchmark's rounds in ms (the budgets' rule, reports.stats),
    None without rounds."""
    (value,) = percentiles(np.sort(np.asarray(rounds_s(bench), dtype=np.float64)), (q,))
    return value * 1e3 if value is not None else None


def anchor_ratios(data: dict[str, Any]) -> dict[str, float]:
    """Per benchmark with an ``anchor`` in extra_info: its median over the anchor's median."""
    medians = {str(b.get("name")): median_ms(b) for b in benchmarks_of(data)}
    out = {}
    for b in benchmarks_of(data):
        anchor = (b.get("extra_info") or {}).get("anchor")
        mine, theirs = medians.get(str(b.get("name"))), medians.get(str(anchor))
        if isinstance(anchor, str) and mine is not None and theirs:
            out[str(b.get("name"))] = mine / theirs
    return out


# -- the tier budgets ------------------------------------------------------------------------


def judge_tier_budgets(data: dict[str, Any], budgets_path: Path) -> list[TierBudgetResult]:
    """Every microbenchmark budget against every benchmark it names that ran."""
    results = []
    benches = benchmarks_of(data)
    for budget in load_budgets(budgets_path).of_kind("microbenchmark"):
        # reports.budgets has checked that a microbenchmark budget has a max and a percentile
        q, max_ms = float(budget.percentile or 99.0), float(budget.max or 0.0)
        matches = [b for b in benches if base_name(b) in budget.benchmarks]
        if not matches:
            names = ", ".join(budget.benchmarks)
            results.append(TierBudgetResult(budget.id, names, q, None, max_ms, 0))
        for b in matches:
            results.append(
                TierBudgetResult(
                    budget.id,
                    str(b.get("name")),
                    q,
                    percentile_ms(b, q),
                    max_ms,
                    len(rounds_s(b)),
                )
            )
    return results


# -- comparison ------------------------------------------------------------------------------


def compare_benchmarks(
    baseline: dict[str, Any],
    current: dict[str, Any],
    *,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
) -> list[Change]:
    """Each benchmark of either run, judged on its rounds (see velro_perf/bench/__init__.py)."""
    base = {str(b.get("name")): b for b in benchmarks_of(baseline)}
    cur = {str(b.get("name")): b for b in benchmarks_of(current)}
    changes = [
        _change(name, base.get(name), cur.get(name), alpha, min_effect)
        for name in sorted(set(base) | set(cur))
    ]
    # Beside each benchmark, how its physical anchor moved between the two runs: when the
    # anchor slowed down as much, the machine changed (a busy neighbour), not the code.
    by_name = {ch.name: ch for ch in changes}
    out: list[Change] = []
    for ch in changes:
        anchor = ((cur.get(ch.name) or {}).get("extra_info") or {}).get("anchor")
        if not isinstance(anchor, str):
            out.append(ch)
            continue
        moved = by_name[anchor].ratio if anchor in by_name else None
        out.append(replace(ch, anchor=anchor, anchor_ratio=moved))
    return out


def _change(
    name: str,
    b: dict[str, Any] | None,
    c: dict[str, Any] | None,
    alpha: float,
    min_effect: float,
) -> Change:
    from scipy.stats import mannwhitneyu

    if b is None or c is None:
        mb_, mc_ = (median_ms(b) if b else None), (median_ms(c) if c else None)
        return Change(name, mb_, mc_, None, "new" if b is None else "gone")
    rb, rc = rounds_s(b), rounds_s(c)
    mb, mc = median_ms(b), median_ms(c)
    if len(rb) < 2 or len(rc) < 2 or mb is None or mc is None:
        return Change(name, mb, mc, None, "too_few_rounds")
    slower = mannwhitneyu(rc, rb, alternative="greater").pvalue
    faster = mannwhitneyu(rc, rb, alternative="less").pvalue
    if slower < alpha and mc >= mb * (1.0 + min_effect):
        return Change(name, mb, mc, float(slower), "regression")
    if faster < alpha and mc <= mb * (1.0 - min_effect):
        return Change(name, mb, mc, float(faster), "faster")
    return Change(name, mb, mc, float(min(slower, faster)), "unchanged")

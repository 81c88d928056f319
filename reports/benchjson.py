"""pytest-benchmark's --benchmark-json output: the tier microbenchmarks and their budgets.

pytest-benchmark writes times in seconds; everything here is in milliseconds. Its stats carry
no p99, so a microbenchmark budget on a percentile is judged from the raw rounds when the JSON
has them (``--benchmark-save-data``: exact order-statistic CI, as for load runs) and otherwise
from what bounds it: p99 <= max, so max under the bound passes; p99 >= median, so a median at
or over the bound fails; anything between is inconclusive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from velro_perf.reports.analysis import judge_interval
from velro_perf.reports.budgets import Budgets
from velro_perf.reports.errors import RunDirError
from velro_perf.reports.runfiles import BudgetVerdict, MicrobenchResult
from velro_perf.reports.sentences import bound_text, fmt_value
from velro_perf.reports.stats import Interval, percentile_ci, percentiles

__all__ = ["base_name", "benchmark_rows", "judge_microbenchmarks", "read_bench_json"]


def read_bench_json(path: Path) -> dict[str, Any] | None:
    """The parsed JSON object, or None when the file does not exist or holds no object."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(
            f"{path} is not pytest-benchmark JSON ({exc}); re-run velro-perf bench"
        ) from exc
    return data if isinstance(data, dict) else None


def base_name(bench: dict[str, Any]) -> str:
    # "test_l1_hit[sqlite]" -> "test_l1_hit": budgets name the test, not its parameters
    return str(bench.get("name", "")).split("[", 1)[0]


def _ms(value: Any) -> float | None:
    return float(value) * 1000.0 if isinstance(value, int | float) else None


def benchmark_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Per benchmark: median, p99 (of the rounds, else max), ops, rounds, anchor ratio."""
    benches = [b for b in data.get("benchmarks", []) if isinstance(b, dict)]
    medians = {str(b.get("name")): _ms((b.get("stats") or {}).get("median")) for b in benches}
    rows = []
    for b in benches:
        st = b.get("stats") or {}
        raw = st.get("data")
        if isinstance(raw, list) and raw:
            ordered = np.sort(np.asarray(raw, dtype=np.float64))
            p99: float | None = (percentiles(ordered, (99.0,))[0] or 0.0) * 1e3
            p99_source = "p99 of the rounds"
        else:
            p99, p99_source = _ms(st.get("max")), "max (no rounds saved)"
        extra = b.get("extra_info") or {}
        anchor = extra.get("anchor") if isinstance(extra, dict) else None
        ratio = None
        med = medians.get(str(b.get("name")))
        if isinstance(anchor, str) and medians.get(anchor) and med is not None:
            ratio = med / medians[anchor]  # type: ignore[operator]
        rows.append(
            {
                "name": str(b.get("name")),
                "group": b.get("group"),
                "median_ms": med,
                "p99_ms": p99,
                "p99_source": p99_source,
                "ops": st.get("ops"),
                "rounds": st.get("rounds"),
                "anchor": anchor,
                "anchor_ratio": ratio,
            }
        )
    return rows


def judge_microbenchmarks(budgets: Budgets, data: dict[str, Any] | None) -> list[MicrobenchResult]:
    """One result per microbenchmark budget and matching benchmark, shaped like summary.json's."""
    benches = [b for b in (data or {}).get("benchmarks", []) if isinstance(b, dict)]
    out: list[MicrobenchResult] = []
    for budget in budgets.of_kind("microbenchmark"):
        matches = [b for b in benches if base_name(b) in budget.benchmarks]
        if not matches:
            out.append(
                {
                    "id": budget.id,
                    "benchmark": ", ".join(budget.benchmarks),
                    "requirement": budget.requirement,
                    "bound": bound_text(budget),
                    "measured": None,
                    "ci_low": None,
                    "ci_high": None,
                    "samples": 0,
                    "verdict": BudgetVerdict.NO_DATA,
                    "sentence": f"{budget.requirement}: no benchmark in the JSON.",
                }
            )
            continue
        for b in matches:
            st = b.get("stats") or {}
            raw = st.get("data")
            q = budget.percentile or 99.0
            if isinstance(raw, list) and raw:
                lat = np.sort(np.asarray(raw, dtype=np.float64) * 1e3)
                iv = percentile_ci(lat, q)
            else:
                med, mx = _ms(st.get("median")), _ms(st.get("max"))
                # p99 lies between the median and the max of the rounds
                iv = Interval(mx, med, mx, int(st.get("rounds") or 0))
            verdict = judge_interval(iv, budget)
            out.append(
                {
                    "id": budget.id,
                    "benchmark": str(b.get("name")),
                    "requirement": budget.requirement,
                    "bound": bound_text(budget),
                    "measured": iv.value,
                    "ci_low": iv.low,
                    "ci_high": iv.high,
                    "samples": iv.n,
                    "verdict": verdict,
                    "sentence": (
                        f"{b.get('name')} p{q:g} {fmt_value('latency', iv.value)} against "
                        f"{bound_text(budget)}: {verdict}."
                    ),
                }
            )
    return out

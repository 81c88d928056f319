"""One step of a capacity search judged: its hold's budgets (by the gate's own code, through
reports.window), what limits it, and its CPU split per request.

Which budgets limit the capacity:

* latency and error-rate budgets: a conclusive fail stops the climb; a verdict that straddles
  the bound makes the step inconclusive (lengthened, then never counted as a pass);
* a budget with too few requests at this level for its interval to reach the bound's side
  (the p95 of 40 sign-ups; an error rate of 0.1 % over fewer than 3,689 requests) cannot be
  judged here: shown as such, not limiting;
* the cache hit rate, and any hit-rate budget: reported beside the capacity, not limiting it.
  It depends on how long the users have revisited their working set as much as on the load
  (docs/capacity.md), so a hold of a minute or two says little of the steady state;
* users and microbenchmark budgets are not judged on a step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, cast

import pandas as pd

from velro_perf.capacity.cpu import CpuSplit
from velro_perf.capacity.search import Outcome
from velro_perf.reports.runfiles import BudgetResult, Summary

__all__ = ["LIMITING_KINDS", "Step", "judge_step"]

LIMITING_KINDS = ("latency", "error_rate")
BESIDE_KINDS = ("hit_rate",)
OPEN_MIN_SENT = 0.9  # the open model sent less than this share of its schedule: not the level


@dataclass
class Step:
    index: int
    level: float
    phase: str
    users: float | None
    open_rate: float | None
    hold_from: float
    hold_to: float
    requests: int
    throughput_rps: float
    mean_latency_ms: float | None
    outcome: Outcome
    limited_by: list[str]
    budgets: list[dict[str, Any]]
    invalid_reasons: list[str]
    notes: list[str]
    holds: int  # 1, or more when an inconclusive hold was lengthened
    cpu: CpuSplit | None = None
    hit_rate: float | None = None
    cache_tiers: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def hold_s(self) -> float:
        return self.hold_to - self.hold_from

    def cpu_per_request_ms(self) -> dict[str, float | None] | None:
        return self.cpu.per_request_ms(self.requests) if self.cpu is not None else None

    def to_json(self) -> dict[str, Any]:
        cpu = self.cpu
        return {
            "index": self.index,
            "level": self.level,
            "phase": self.phase,
            "users": self.users,
            "open_rate": self.open_rate,
            "hold_from": self.hold_from,
            "hold_to": self.hold_to,
            "hold_s": round(self.hold_s, 3),
            "holds": self.holds,
            "requests": self.requests,
            "throughput_rps": self.throughput_rps,
            "mean_latency_ms": self.mean_latency_ms,
            "verdict": self.outcome.value,
            "limited_by": self.limited_by,
            "invalid_reasons": self.invalid_reasons,
            "notes": self.notes,
            "budgets": self.budgets,
            "hit_rate": self.hit_rate,
            "cache_tiers": self.cache_tiers,
            "cpu": None
            if cpu is None
            else {
                "cores": cpu.cores,
                "seconds": {
                    "service": cpu.service_s,
                    "generator": cpu.generator_s,
                    "data_stores": cpu.stores_s,
                    "runner": cpu.runner_s,
                    "other": cpu.other_s,
                    "machine": cpu.machine_s,
                },
                "per_request_ms": self.cpu_per_request_ms(),
            },
        }


def _row(result: BudgetResult, limiting: bool, judged: str) -> dict[str, Any]:
    return {
        "id": result["id"],
        "kind": result["kind"],
        "percentile": result.get("percentile"),
        "bound": result["bound"],
        "measured": result["measured"],
        "ci_low": result["ci_low"],
        "ci_high": result["ci_high"],
        "samples": result["samples"],
        "verdict": str(result["verdict"]),
        "limiting": limiting,
        "judged": judged,
        "sentence": result.get("sentence", ""),
    }


def _unbounded(result: BudgetResult) -> bool:
    """Too few samples to judge, not a straddle: an interval with no end on the bound's side,
    or an error rate over fewer requests than even none unexpected would bring under its
    bound (the upper end of Clopper-Pearson's interval of 0 in n is 1 - (alpha/2)^(1/n): at
    0.1 % that needs 3,689 requests, more than a short hold at a low level sends)."""
    bound = result["bound"]
    if result["kind"] == "error_rate" and "max" in bound and 0 < bound["max"] < 1:
        confidence = result.get("confidence") or 0.95
        needed = math.log((1 - confidence) / 2) / math.log(1 - bound["max"])
        if result["samples"] < needed:
            return True
    if "max" in bound:
        return result["ci_high"] is None
    return result["ci_low"] is None


def judge_step(
    summary: Summary, *, open_rate: float | None
) -> tuple[Outcome, list[str], list[dict[str, Any]], list[str], list[str]]:
    """(outcome, limited_by, budget rows, invalid reasons, notes) of a hold's summary."""
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    straddling: list[str] = []
    notes: list[str] = []
    for result in summary["budgets"]:
        verdict = str(result["verdict"])
        kind = result["kind"]
        if kind in LIMITING_KINDS:
            if verdict == "fail":
                failed.append(result["id"])
                rows.append(_row(result, True, "limiting"))
            elif verdict == "inconclusive" and _unbounded(result):
                notes.append(f"{result['id']}: too few requests ({result['samples']}) to bound")
                rows.append(_row(result, False, "too few samples"))
            elif verdict == "inconclusive":
                straddling.append(result["id"])
                rows.append(_row(result, True, "limiting"))
            elif verdict == "no_data":
                rows.append(_row(result, False, "no requests"))
            elif verdict == "not_applicable":
                rows.append(_row(result, False, "not applicable"))
            else:
                rows.append(_row(result, True, "limiting"))
        elif kind in BESIDE_KINDS and verdict != "not_applicable":
            rows.append(_row(result, False, "beside the capacity"))
    invalid = list(summary["invalid_reasons"])
    duration = summary.get("duration_s") or 0.0
    if open_rate and duration > 0:
        sent = summary["requests"] / (open_rate * duration)
        if sent < OPEN_MIN_SENT:
            invalid.append(
                f"the open model sent {summary['requests']:,} requests in {duration:.0f} s, "
                f"{sent:.0%} of its {open_rate:g}/s schedule: the generator did not hold the level"
            )
    if invalid:
        return Outcome.INVALID, [], rows, invalid, notes
    if failed:
        return Outcome.FAIL, failed, rows, invalid, notes
    if straddling:
        return Outcome.INCONCLUSIVE, straddling, rows, invalid, notes
    return Outcome.PASS, [], rows, invalid, notes


def cache_tiers(window: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per endpoint, how many answers each cache tier gave (Server-Timing `cache;desc=`):
    which lookups miss, by kind of key. Empty for a target that does not say."""
    if window.empty or "st_cache" not in window or window["st_cache"].isna().all():
        return {}
    counts = (
        window.dropna(subset=["st_cache"]).groupby(["endpoint", "st_cache"], observed=True).size()
    )
    out: dict[str, dict[str, int]] = {}
    for key, n in counts.items():
        endpoint, tier = cast(tuple[Any, Any], key)
        out.setdefault(str(endpoint), {})[str(tier)] = int(n)
    return out


def hit_rate_of(rows: list[dict[str, Any]]) -> float | None:
    for row in rows:
        if row["kind"] == "hit_rate" and isinstance(row["measured"], float | int):
            return float(row["measured"])
    return None

"""From a run directory to its summary: every budget judged, with its uncertainty.

A budget is a bound on a measured figure *with* its confidence interval (PRD: "a p95 whose
confidence interval straddles the bound is inconclusive, not pass"):

* upper bound (max): ``pass`` when the CI's upper end is under the bound, ``fail`` when its
  lower end is at or over it, else ``inconclusive``;
* lower bound (min): ``pass`` when the lower end is at or over the bound, ``fail`` when the upper
  end is under it, else ``inconclusive``;
* ``no_data`` when nothing was measured, ``not_applicable`` for a shape the budget does not
  list, and for microbenchmark budgets in a load run (they are judged from pytest-benchmark's
  JSON, see reports.benchjson).

The cache hit rate is defined in reports/counters.py, the validity of a run in
reports/validity.py, and the sentences a stakeholder reads in reports/sentences.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from velro_perf.reports.budgets import Budget, Budgets
from velro_perf.reports.counters import cache_counters
from velro_perf.reports.loading import RunData, load_run
from velro_perf.reports.phases import LatencyBound, phase_rows
from velro_perf.reports.runfiles import (
    ApiNamed,
    BudgetResult,
    BudgetVerdict,
    EndpointRow,
    LocustFigures,
    RunConfig,
    Summary,
    Verdict,
)
from velro_perf.reports.runfolder import RunFolder
from velro_perf.reports.sentences import bound_text, sentence
from velro_perf.reports.stats import Interval, clopper_pearson, wilson
from velro_perf.reports.validity import generator_health, invalid_reasons, measured_duration

__all__ = [
    "ENDPOINT_QS",
    "judge_interval",
    "summarize",
    "summarize_data",
    "write_summary",
]

USERS_WINDOW_S = 10  # the users budget judges latency in windows of this many seconds
USERS_WINDOW_MIN = 20  # a window with fewer samples of a budget's endpoints says nothing of it
ENDPOINT_QS = (50.0, 90.0, 95.0, 99.0, 99.9)
LOCUST_QS = {"p50": "50%", "p90": "90%", "p95": "95%", "p99": "99%", "p999": "99.9%", "max": "100%"}


def summarize(run_dir: Path, budgets: Budgets) -> Summary:
    """The content of summary.json for a run directory (not written: see write_summary)."""
    return summarize_data(load_run(run_dir), budgets)


def write_summary(run_dir: Path, summary: Summary) -> Path:
    """Write summary.json into the run directory (atomically); return its path."""
    return RunFolder(Path(run_dir)).write_summary(summary)


def summarize_data(data: RunData, budgets: Budgets) -> Summary:
    """summarize() on an already opened run, so the report reads samples.csv once."""
    totals = data.judged_totals
    generator = generator_health(data)
    results = [_judge(b, data, budgets) for b in budgets]
    invalid = invalid_reasons(data, generator)
    verdict = Verdict.of((r["verdict"] for r in results), invalid=bool(invalid))
    duration = measured_duration(data)
    meta, config = data.meta, data.config
    warnings = []
    if meta and not meta.get("complete", False):
        reason = meta.get("interrupted") or "it did not end normally"
        warnings.append(f"The run is incomplete ({reason}): figures cover only what was run.")
    return {
        "run_id": meta.get("run_id", data.run_dir.name),
        "complete": bool(meta.get("complete", False)),
        "interrupted": meta.get("interrupted"),
        "verdict": verdict,
        "exit_code": verdict.exit_code,
        "invalid_reasons": invalid,
        "warnings": warnings,
        "prd": budgets.prd,
        "shape": config.get("shape"),
        "service_profile": config.get("service_profile"),
        "target": config.get("target"),
        "api": _api_named(config),
        "config_hash": config.get("config_hash"),
        "started_at": meta.get("started_at"),
        "measured_from": data.measured_from,
        "duration_s": duration,
        "requests": totals.n,
        "rps": (totals.n / duration) if duration else None,
        "samples_mode": data.samples.mode,
        "samples_source": data.samples.source,
        "budgets": results,
        "endpoints": _endpoint_rows(data),
        "generator": generator,
        "config": config,
        "meta": meta,
        "phases": phase_rows(data, latency_bounds(budgets, data)),
    }


def latency_bounds(budgets: Budgets, data: RunData) -> list[LatencyBound]:
    """The latency budgets this run is judged on, with the endpoints they judge here."""
    out = []
    for b in budgets.of_kind("latency"):
        if not b.applies_to(data.shape) or b.max is None or b.percentile is None:
            continue
        endpoints, _ = _budget_endpoints(b, data.config)
        if endpoints:
            out.append(LatencyBound(b.id, endpoints, b.percentile, b.max))
    return out


def _api_named(config: RunConfig) -> ApiNamed | None:
    """The API file the run drove, as summary.json names it: name, file and SHA-256."""
    api = config.get("api")
    if not isinstance(api, dict):
        return None
    return {"name": api.get("name"), "file": config.get("api_file"), "sha256": api.get("sha256")}


# ---------------------------------------------------------------- latencies by endpoint


def _endpoint_rows(data: RunData) -> list[EndpointRow]:
    locust = data.locust_stats
    rows: list[EndpointRow] = []
    for e in data.samples.endpoint_stats(ENDPOINT_QS):
        p50, p90, p95, p99, p999 = e.quantiles
        row: EndpointRow = {
            "endpoint": e.endpoint,
            "category": e.category,
            "requests": e.n,
            "failures": e.failures,
            "p50": p50,
            "p90": p90,
            "p95": p95,
            "p99": p99,
            "p999": p999,
            "max": e.max_ms,
            "locust": _locust_row(locust, e.endpoint),
        }
        rows.append(row)
    rows.sort(key=lambda r: (r["category"], r["endpoint"]))
    return rows


def _locust_row(locust: pd.DataFrame, endpoint: str) -> LocustFigures:
    if locust.empty:
        return {}
    match = locust[locust["endpoint"] == endpoint]
    if match.empty:
        return {}
    row = match.iloc[0]
    out: dict[str, float | None] = {}
    for key, col in LOCUST_QS.items():
        raw: Any = row.get(col)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = math.nan
        out[key] = value if math.isfinite(value) else None
    return cast(LocustFigures, out)


# ---------------------------------------------------------------- judging


def judge_interval(iv: Interval, budget: Budget) -> BudgetVerdict:
    """pass / fail / inconclusive / no_data from an interval and the budget's bound."""
    if iv.value is None:
        return BudgetVerdict.NO_DATA
    if budget.max is not None:
        if iv.high is not None and iv.high < budget.max:
            return BudgetVerdict.PASS
        if iv.low is not None and iv.low >= budget.max:
            return BudgetVerdict.FAIL
        return BudgetVerdict.INCONCLUSIVE
    if budget.min is not None:
        if iv.low is not None and iv.low >= budget.min:
            return BudgetVerdict.PASS
        if iv.high is not None and iv.high < budget.min:
            return BudgetVerdict.FAIL
        return BudgetVerdict.INCONCLUSIVE
    return BudgetVerdict.INCONCLUSIVE


def _judge(b: Budget, data: RunData, budgets: Budgets) -> BudgetResult:
    base: BudgetResult = {
        "id": b.id,
        "requirement": b.requirement,
        "description": b.description,
        "kind": b.kind,
        "bound": b.bound,
        "bound_text": bound_text(b),
        "percentile": b.percentile,
        "measured": None,
        "ci_low": None,
        "ci_high": None,
        "confidence": 0.95,
        "samples": 0,
        "verdict": BudgetVerdict.NOT_APPLICABLE,
        "note": "",
        "outside_prd": not b.prd,
    }
    if b.kind == "microbenchmark":
        base["note"] = "judged by the microbenchmarks (velro-perf bench), not by a load run"
    elif not b.applies_to(data.shape):
        base["note"] = f"judged only on shape(s) {', '.join(b.shapes or ())}, not {data.shape}"
    elif b.kind == "latency":
        endpoints, lacking = _budget_endpoints(b, data.config)
        if not endpoints:
            base["note"] = lacking
        else:
            assert b.percentile is not None  # validated by load_budgets
            iv = data.samples.interval(endpoints, b.percentile)
            _put(base, iv, b)
            base["note"] = (
                f"from {data.samples.source}: {iv.n:,} requests to {', '.join(endpoints)}"
            )
    elif b.kind == "error_rate":
        totals = data.judged_totals
        k = totals.unexpected
        _put(base, clopper_pearson(k, totals.n), b)
        base["note"] = f"from {data.samples.source}: {k:,} unexpected of {totals.n:,} responses"
    elif b.kind == "hit_rate":
        hits, lookups = cache_counters(data.metrics, data.measured_from)
        if lookups is None:
            base["verdict"] = BudgetVerdict.NO_DATA
            base["note"] = "metrics.jsonl is absent or has no cache counters after warm-up"
        elif lookups == 0:
            base["verdict"] = BudgetVerdict.NO_DATA
            base["note"] = (
                "metrics.jsonl shows no cache lookups after warm-up (cache off or unused)"
            )
        else:
            assert hits is not None
            _put(base, wilson(min(hits, lookups), lookups), b)
            base["note"] = f"from metrics.jsonl: {hits:,} hits in L1+L2+L3 over {lookups:,} lookups"
    elif b.kind == "users":
        _judge_users(base, b, data, budgets)
    base["sentence"] = sentence(base, b)
    return base


def _budget_endpoints(b: Budget, config: RunConfig) -> tuple[tuple[str, ...], str]:
    """The endpoints a latency budget judges in this run, or none and why.

    A run that records its API file (config.json `api`) is judged on the endpoints of the
    budget's operations there; a budget whose operations the backend lacks is not applicable,
    with the API file's reason. Runs without one are judged on the budget's own `endpoints`.
    """
    api = config.get("api")
    if not b.operations or not isinstance(api, dict):
        return b.endpoints, ""
    described = api.get("operations") or {}
    endpoints = tuple(str(described[op]) for op in b.operations if op in described)
    if endpoints:
        return endpoints, ""
    lacks = api.get("lacks") or {}
    reasons = sorted({str(lacks.get(op) or f"no {op} operation") for op in b.operations})
    return (), f"the backend has no {' or '.join(b.operations)}: " + "; ".join(reasons)


def _put(out: BudgetResult, iv: Interval, b: Budget) -> None:
    out.update(
        {
            "measured": iv.value,
            "ci_low": iv.low,
            "ci_high": iv.high,
            "samples": iv.n,
            "confidence": iv.confidence,
            "verdict": judge_interval(iv, b),
        }
    )


def _judge_users(base: BudgetResult, b: Budget, data: RunData, budgets: Budgets) -> None:
    """Peak users held in windows where every applicable latency budget held (point estimate
    of the window's percentile; a window with too few samples of a budget does not count
    against it)."""
    users = _users_series(data)
    n = data.judged_totals.n
    if users.empty or n == 0:
        base["verdict"] = BudgetVerdict.NO_DATA
        base["note"] = "no user counts (locust_stats_history.csv or generator.jsonl)"
        return
    t0 = data.measured_from
    store = data.samples
    windows = np.array(store.windows(t0, USERS_WINDOW_S), dtype=np.int64)
    holds = pd.Series(True, index=windows)
    for lb in budgets.of_kind("latency"):
        if not lb.applies_to(data.shape) or lb.max is None or lb.percentile is None:
            continue
        per_window = store.window_percentiles(lb.endpoints, lb.percentile, t0, USERS_WINDOW_S)
        bad = [
            w for w, (q, count) in per_window.items() if q >= lb.max and count >= USERS_WINDOW_MIN
        ]
        holds.loc[holds.index.intersection(bad)] = False
    uwin = ((users["ts"].to_numpy() - t0) // USERS_WINDOW_S).astype(np.int64)
    held_users = pd.Series(users["users"].to_numpy()).groupby(uwin).min()
    ok = held_users[held_users.index.isin(holds[holds].index)]
    peak = float(users.loc[users["ts"] >= t0, "users"].max()) if (users["ts"] >= t0).any() else 0.0
    measured = float(ok.max()) if len(ok) else 0.0
    base.update({"measured": measured, "ci_low": measured, "ci_high": measured})
    base["samples"] = n
    assert b.min is not None
    base["verdict"] = BudgetVerdict.PASS if measured >= b.min else BudgetVerdict.FAIL
    base["note"] = (
        f"from locust_stats_history.csv and {store.source}: peak {peak:,.0f} users, "
        f"{int(holds.sum())} of {len(holds)} {USERS_WINDOW_S}-s windows within every latency budget"
    )


def _users_series(data: RunData) -> pd.DataFrame:
    hist = data.locust_history
    if not hist.empty and hist["users"].notna().any():
        return hist[["ts", "users"]].dropna()
    gen = data.generator
    if not gen.empty and gen["users"].notna().any():
        return gen[["ts", "users"]].dropna()
    return pd.DataFrame(columns=["ts", "users"])

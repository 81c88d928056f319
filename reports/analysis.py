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

The cache hit rate over the tiers is defined as

    lookups = L1 hits + L1 misses          (every lookup starts at L1)
    hits    = L1 hits + L2 hits + L3 hits  (answered by some tier, not by the source)

over the counters' increase between the first scrape of metrics.jsonl at or after
``measured_from`` and the last one, summed over the service's worker processes (each scrape is
answered by one of them, with its own counters: see counter_increases), with Wilson's 95 %
interval.
"""

from __future__ import annotations

import itertools
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from reports.budgets import Budget, Budgets
from reports.loading import RunData, load_run
from reports.runfiles import (
    BudgetResult,
    BudgetVerdict,
    EndpointRow,
    GeneratorHealth,
    LocustFigures,
    OpenModelFigures,
    Summary,
    Verdict,
    WorkerHealth,
)
from reports.stats import Interval, clopper_pearson, percentile_ci, percentiles, wilson
from reports.units import MISSING, fmt_ms

__all__ = [
    "CPU_SATURATED",
    "MIN_SAMPLES",
    "TIERS",
    "bound_text",
    "cache_counters",
    "counter_increases",
    "endpoint_latencies",
    "fmt_value",
    "judge_interval",
    "summarize",
    "summarize_data",
    "tier_counts",
    "write_summary",
]

CPU_SATURATED = 90.0  # % of one core: above it the generator, not the target, sets the pace
CPU_WINDOW_S = 5  # a generator process whose CPU averages over CPU_SATURATED in this window
HEALTH_FILE = "generator_health.json"  # what Locust's master saw: workers lost, users overshot
OPEN_MODEL_FILE = "open_model.json"  # the open model's schedule: intended against actual starts
MIN_SAMPLES = 100  # fewer judged requests than this cannot bound any percentile we gate on
UNREACHABLE_SHARE = 0.5  # half the requests without any response: the target was not there
USERS_WINDOW_S = 10  # the users budget judges latency in windows of this many seconds
USERS_WINDOW_MIN = 20  # a window with fewer samples of a budget's endpoints says nothing of it
TIERS = ("L1", "L2", "L3")
ENDPOINT_QS = (50.0, 90.0, 95.0, 99.0, 99.9)
LOCUST_QS = {"p50": "50%", "p90": "90%", "p95": "95%", "p99": "99%", "p999": "99.9%", "max": "100%"}

FloatArray = NDArray[np.float64]


def summarize(run_dir: Path, budgets: Budgets) -> Summary:
    """The content of summary.json for a run directory (not written: see write_summary)."""
    return summarize_data(load_run(run_dir), budgets)


def write_summary(run_dir: Path, summary: Summary) -> Path:
    """Write summary.json into the run directory; return its path."""
    path = Path(run_dir) / "summary.json"
    tmp = path.with_suffix(".json.tmp")
    text = json.dumps(_json_safe(summary), indent=2, allow_nan=False)
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)  # atomic: a reader never sees half a summary
    return path


def _json_safe(value: Any) -> Any:
    """NaN and infinities become null (JSON has no such numbers); numpy scalars become Python's."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summarize_data(data: RunData, budgets: Budgets) -> Summary:
    """summarize() on an already opened run, so the report reads samples.csv once."""
    judged = data.judged
    by_endpoint = endpoint_latencies(judged)
    generator = _generator_health(data)
    results = [_judge(b, data, by_endpoint, budgets) for b in budgets]
    invalid = _invalid_reasons(data, generator)
    verdict = Verdict.of((r["verdict"] for r in results), invalid=bool(invalid))
    duration = _measured_duration(data)
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
        "config_hash": config.get("config_hash"),
        "started_at": meta.get("started_at"),
        "measured_from": data.measured_from,
        "duration_s": duration,
        "requests": len(judged),
        "rps": (len(judged) / duration) if duration else None,
        "budgets": results,
        "endpoints": _endpoint_rows(data, by_endpoint),
        "generator": generator,
        "config": config,
        "meta": meta,
    }


# ---------------------------------------------------------------- latencies by endpoint


def endpoint_latencies(judged: pd.DataFrame) -> dict[str, FloatArray]:
    """Sorted latencies of each endpoint, from one lexsort (cheaper than a mask per endpoint)."""
    if judged.empty:
        return {}
    cat = judged["endpoint"].astype("category")
    codes = cat.cat.codes.to_numpy()
    lat = judged["latency_ms"].to_numpy(dtype=np.float64)
    order = np.lexsort((lat, codes))
    lat_sorted = lat[order]
    counts = np.bincount(codes[codes >= 0], minlength=len(cat.cat.categories))
    out: dict[str, FloatArray] = {}
    start = int((codes < 0).sum())  # NaN endpoints sort first; skip them
    for name, count in zip(cat.cat.categories, counts, strict=True):
        if count:
            out[str(name)] = lat_sorted[start : start + count]
        start += int(count)
    return out


def _pooled(by_endpoint: dict[str, FloatArray], endpoints: tuple[str, ...]) -> FloatArray:
    parts = [by_endpoint[e] for e in endpoints if e in by_endpoint]
    if not parts:
        return np.empty(0)
    if len(parts) == 1:
        return parts[0]
    return np.sort(np.concatenate(parts), kind="mergesort")


def _endpoint_rows(data: RunData, by_endpoint: dict[str, FloatArray]) -> list[EndpointRow]:
    judged = data.judged
    if judged.empty:
        return []
    grouped = judged.groupby("endpoint", observed=True)
    failures = grouped["expected"].apply(lambda s: int((s == 0).sum()))
    category = grouped["category"].first()
    locust = data.locust_stats
    rows: list[EndpointRow] = []
    for endpoint, lat in by_endpoint.items():
        p50, p90, p95, p99, p999 = percentiles(lat, ENDPOINT_QS)
        row: EndpointRow = {
            "endpoint": endpoint,
            "category": str(category.get(endpoint, "")),
            "requests": len(lat),
            "failures": int(failures.get(endpoint, 0)),
            "p50": p50,
            "p90": p90,
            "p95": p95,
            "p99": p99,
            "p999": p999,
            "max": float(lat[-1]),
            "locust": _locust_row(locust, endpoint),
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


def _judge(
    b: Budget, data: RunData, by_endpoint: dict[str, FloatArray], budgets: Budgets
) -> BudgetResult:
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
    }
    if b.kind == "microbenchmark":
        base["note"] = "judged by the microbenchmarks (velro-perf bench), not by a load run"
    elif not b.applies_to(data.shape):
        base["note"] = f"judged only on shape(s) {', '.join(b.shapes or ())}, not {data.shape}"
    elif b.kind == "latency":
        lat = _pooled(by_endpoint, b.endpoints)
        assert b.percentile is not None  # validated by load_budgets
        _put(base, percentile_ci(lat, b.percentile), b)
        base["note"] = f"from samples.csv: {len(lat):,} requests to {', '.join(b.endpoints)}"
    elif b.kind == "error_rate":
        judged = data.judged
        k = int((judged["expected"].to_numpy() == 0).sum())
        _put(base, clopper_pearson(k, len(judged)), b)
        base["note"] = f"from samples.csv: {k:,} unexpected of {len(judged):,} responses"
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
    base["sentence"] = _sentence(base, b)
    return base


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


def counter_increases(metrics: list[dict[str, Any]], measured_from: float) -> pd.DataFrame:
    """Per scrape after warm-up, how much each cache counter grew since the previous scrape of
    the same service process.

    A multi-process service answers each scrape from whichever worker accepted it, each with its
    own counters, so consecutive scrapes are compared only within one process (the body's
    ``process`` id; a body without one is one process). A counter that went down was reset (a
    restarted worker): its increase is counted from its new value. Columns: ts, process, then
    ``L1.hits``, ``L1.misses``, ... for the counters present.
    """
    series: dict[str, list[tuple[float, dict[str, float]]]] = {}
    for m in metrics:
        ts = m.get("ts")
        body = m.get("metrics")
        cache = body.get("cache") if isinstance(body, dict) else None
        if not isinstance(ts, int | float) or ts < measured_from or not isinstance(cache, dict):
            continue
        assert isinstance(body, dict)
        process = str(body.get("process", ""))
        series.setdefault(process, []).append((float(ts), tier_counts(cache)))
    rows: list[dict[str, Any]] = []
    for process, scrapes in series.items():
        scrapes.sort(key=lambda r: r[0])
        for (_, prev), (ts, cur) in itertools.pairwise(scrapes):
            row: dict[str, Any] = {"ts": ts, "process": process}
            for key, value in cur.items():
                before = prev.get(key, 0.0)
                row[key] = value - before if value >= before else value
            rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["ts", "process"])
    return pd.DataFrame(rows).sort_values("ts", kind="stable").reset_index(drop=True)


def cache_counters(
    metrics: list[dict[str, Any]], measured_from: float
) -> tuple[int | None, int | None]:
    """(hits, lookups) over L1+L2+L3 after warm-up, as defined in the module docstring."""
    inc = counter_increases(metrics, measured_from)
    if inc.empty:
        return None, None

    def total(key: str) -> float:
        return float(inc[key].fillna(0).sum()) if key in inc else 0.0

    lookups = total("L1.hits") + total("L1.misses")
    hits = sum(total(f"{t}.hits") for t in TIERS)
    # (0, 0): counters were served but nothing was looked up (a cache that is off or unused)
    return int(min(hits, lookups)), int(lookups)


def tier_counts(cache: dict[str, Any]) -> dict[str, float]:
    """Counters per tier; tolerant of lower-case tier names and of a nested "tiers" object,
    and of tiers or counters that are absent (a target may serve no cache at all)."""
    out = {}
    if isinstance(cache.get("tiers"), dict):
        cache = cache["tiers"]
    lowered = {str(k).upper(): v for k, v in cache.items()}
    for tier in TIERS:
        t = lowered.get(tier)
        if not isinstance(t, dict):
            continue
        for key in ("hits", "misses"):
            v = t.get(key)
            if isinstance(v, int | float) and math.isfinite(v):
                out[f"{tier}.{key}"] = float(v)
    return out


def _judge_users(base: BudgetResult, b: Budget, data: RunData, budgets: Budgets) -> None:
    """Peak users held in windows where every applicable latency budget held (point estimate
    of the window's percentile; a window with too few samples of a budget does not count
    against it)."""
    users = _users_series(data)
    judged = data.judged
    if users.empty or judged.empty:
        base["verdict"] = BudgetVerdict.NO_DATA
        base["note"] = "no user counts (locust_stats_history.csv or generator.jsonl)"
        return
    t0 = data.measured_from
    win = ((judged["ts"].to_numpy() - t0) // USERS_WINDOW_S).astype(np.int64)
    windows = np.unique(win)
    holds = pd.Series(True, index=windows)
    for lb in budgets.of_kind("latency"):
        if not lb.applies_to(data.shape) or lb.max is None or lb.percentile is None:
            continue
        mask = judged["endpoint"].isin(lb.endpoints).to_numpy()
        if not mask.any():
            continue
        g = pd.Series(judged["latency_ms"].to_numpy()[mask]).groupby(win[mask])
        q = g.quantile(lb.percentile / 100.0, interpolation="higher")
        n = g.size()
        bad = q[(q >= lb.max) & (n >= USERS_WINDOW_MIN)].index
        holds.loc[holds.index.intersection(bad)] = False
    uwin = ((users["ts"].to_numpy() - t0) // USERS_WINDOW_S).astype(np.int64)
    held_users = pd.Series(users["users"].to_numpy()).groupby(uwin).min()
    ok = held_users[held_users.index.isin(holds[holds].index)]
    peak = float(users.loc[users["ts"] >= t0, "users"].max()) if (users["ts"] >= t0).any() else 0.0
    measured = float(ok.max()) if len(ok) else 0.0
    base.update({"measured": measured, "ci_low": measured, "ci_high": measured})
    base["samples"] = len(judged)
    assert b.min is not None
    base["verdict"] = BudgetVerdict.PASS if measured >= b.min else BudgetVerdict.FAIL
    base["note"] = (
        f"from locust_stats_history.csv and samples.csv: peak {peak:,.0f} users, "
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


# ---------------------------------------------------------------- validity


def _generator_health(data: RunData) -> GeneratorHealth:
    gen = data.generator
    out: GeneratorHealth = {
        "cpu_max": None,
        "cpu_p95": None,
        "saturated": False,
        "saturated_at": None,
        "cpu_window_max": None,
        "cpu_window_s": CPU_WINDOW_S,
        "intended_rps": None,
        "achieved_rps": None,
    }
    if not gen.empty:
        g = gen[gen["ts"] >= data.measured_from]
        busiest = g[["ts", "cpu_percent_max"]].dropna()
        cpu = busiest["cpu_percent_max"].to_numpy(dtype=np.float64)
        if len(cpu):
            out["cpu_max"] = float(cpu.max())
            out["cpu_p95"] = percentiles(np.sort(cpu), (95.0,))[0]
            # a sustained window, not a run-wide percentile: a saturated or starved stretch
            # of a long run does not hide behind its quiet minutes
            window = min(CPU_WINDOW_S, len(cpu))
            means = np.convolve(cpu, np.ones(window) / window, mode="valid")
            worst = int(np.argmax(means))
            out["cpu_window_max"] = float(means[worst])
            if means[worst] > CPU_SATURATED:
                out["saturated"] = True
                out["saturated_at"] = float(busiest["ts"].to_numpy()[worst])
        intended = g["intended_rps"].dropna()
        if len(intended):
            out["intended_rps"] = float(intended.mean())
        achieved = g["achieved_rps"].dropna()
        if len(achieved):
            out["achieved_rps"] = float(achieved.mean())
    if out["achieved_rps"] is None:
        d = _measured_duration(data)
        out["achieved_rps"] = (len(data.judged) / d) if d else None
    out["health"] = cast(WorkerHealth | None, _json_file(data.run_dir, HEALTH_FILE))
    out["open_model"] = cast(OpenModelFigures | None, _open_model(data.run_dir))
    return out


def _open_model(run_dir: Path) -> dict[str, Any] | None:
    """open_model.json's run figures (per-process detail and the timeline left in the file)."""
    loaded = _json_file(run_dir, OPEN_MODEL_FILE)
    if loaded is None or loaded.get("mode") != "open":
        return None
    figures = {k: v for k, v in loaded.items() if k not in ("processes", "timeline", "note")}
    # intended against actual starts, in 10-s steps: what the report shows
    bins: dict[int, list[int]] = {}
    for second, intended, began in loaded.get("timeline", []):
        step = bins.setdefault(int(second) // 10 * 10, [0, 0])
        step[0] += int(intended)
        step[1] += int(began)
    figures["starts_by_10s"] = [[t, *bins[t]] for t in sorted(bins)]
    return figures


def _json_file(run_dir: Path, name: str) -> dict[str, Any] | None:
    try:
        loaded = json.loads((Path(run_dir) / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _clock(ts: float, measured_from: float) -> str:
    """A moment of the run as a person finds it in the logs: UTC, and seconds into the run."""
    when = datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")
    return f"{when} UTC ({ts - measured_from:+.0f} s from the measured start)"


def _health_reasons(generator: GeneratorHealth, measured_from: float) -> list[str]:
    health = cast(dict[str, Any], generator.get("health") or {})
    reasons = []
    for event in health.get("events", []):
        if event.get("kind") == "worker_missing":
            reasons.append(
                f"Locust worker {event.get('worker')} went missing at "
                f"{_clock(event['ts'], measured_from)}: no heartbeat for "
                f"{health.get('heartbeat_liveness', '?')} s while {event.get('users')} users "
                "ran; the master handed its users to the others while it may have kept "
                "running them"
            )
        elif event.get("kind") == "overshoot":
            reasons.append(
                f"{event.get('max_users')} users ran against the shape's "
                f"{event.get('shape_users')} from {_clock(event['ts'], measured_from)} for "
                f"{event.get('duration_s')} s: the load was not the shape's"
            )
    return reasons


def _invalid_reasons(data: RunData, generator: GeneratorHealth) -> list[str]:
    reasons = []
    n = len(data.judged)
    if n == 0:
        reasons.append("no samples after warm-up: samples.csv is absent, empty or all warm-up")
    elif n < MIN_SAMPLES:
        reasons.append(f"only {n} requests after warm-up (fewer than {MIN_SAMPLES})")
    else:
        share = float((data.judged["status"].to_numpy() == 0).mean())
        if share >= UNREACHABLE_SHARE:
            reasons.append(f"target unreachable: {share:.0%} of requests got no response")
    if generator["saturated"]:
        at = _clock(generator["saturated_at"] or data.measured_from, data.measured_from)
        reasons.append(
            f"a generator process averaged {generator['cpu_window_max']:.0f} % of a core over "
            f"{generator['cpu_window_s']} s from {at} (limit {CPU_SATURATED:.0f} %; peak "
            f"{generator['cpu_max']:.0f} %, p95 {generator['cpu_p95']:.0f} %): the load "
            "generator, not the target, set the pace"
        )
    reasons.extend(_health_reasons(generator, data.measured_from))
    opened = cast(dict[str, Any] | None, generator.get("open_model"))
    if opened and opened.get("late_share", 0.0) > opened.get("max_late_share", 1.0):
        reasons.append(
            f"the open model fell behind its schedule: {opened['late']:,} of "
            f"{opened['started']:,} requests ({opened['late_share']:.1%}) started more than "
            f"{opened['late_s']:g} s after their intended time (at most "
            f"{opened['max_late_share']:.1%} may; worst {opened['max_start_lag_s']:.2f} s, "
            f"{opened['peak_in_flight']:,} of {opened['max_in_flight']:,} in flight at most)"
        )
    return reasons


def _measured_duration(data: RunData) -> float | None:
    ts = data.judged["ts"]
    if len(ts) < 2:
        return None
    d = float(ts.max()) - data.measured_from
    return d if d > 0 else None


# ---------------------------------------------------------------- sentences


def fmt_value(kind: str, value: float | None) -> str:
    """A measured value as a stakeholder reads it: ms, %, users."""
    if value is None:
        return MISSING
    if kind in ("latency", "microbenchmark"):
        return fmt_ms(value)
    if kind in ("hit_rate", "error_rate"):
        pct = value * 100
        return f"{pct:.1f} %" if kind == "hit_rate" else f"{pct:.3f} %"
    return f"{value:,.0f}"


def bound_text(b: Budget) -> str:
    """The bound as the PRD states it: "< 50 ms", "≥ 95 %", "≤ 0.1 %", "≥ 10,000"."""
    if b.kind in ("latency", "microbenchmark"):
        return f"< {b.max:g} ms"
    if b.kind == "hit_rate":
        return f"≥ {(b.min or 0) * 100:g} %"
    if b.kind == "error_rate":
        return f"≤ {(b.max or 0) * 100:g} %"
    if b.min is not None:
        return f"≥ {b.min:,.0f}"
    return f"≤ {b.max:,.0f}"


def _sentence(r: BudgetResult, b: Budget) -> str:
    what = b.requirement[:1].upper() + b.requirement[1:]
    if b.percentile is not None:
        what += f" p{b.percentile:g}"
    if b.kind == "users":
        what += " held within every latency budget"
    verdict = r["verdict"].replace("_", " ")
    if r["measured"] is None:
        reason = r["note"] or "nothing was measured"
        return f"{what}: {verdict} ({reason})."
    ci = ""
    if b.kind != "users":
        lo = fmt_value(b.kind, r["ci_low"]) if r["ci_low"] is not None else "unbounded"
        hi = fmt_value(b.kind, r["ci_high"]) if r["ci_high"] is not None else "unbounded"
        ci = f" (95 % CI {lo} to {hi})"
    return f"{what} was {fmt_value(b.kind, r['measured'])}{ci} against {bound_text(b)}: {verdict}."

"""From a run's files to the report's charts: the data reduction behind each figure.

Every reduction is vectorised over the whole samples table once (integer time bins, one groupby,
one sort per category), so a one-hour run of a million requests costs a second or two here.
Each chart's caption names the file and the number of measurements it was drawn from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from reports import charts
from reports.charts import Chart
from reports.counters import TIERS, counter_increases
from reports.loading import RunData
from reports.runfiles import Summary
from reports.validity import CPU_SATURATED

__all__ = ["category_latencies", "run_charts"]

FloatArray = NDArray[np.float64]


def category_latencies(judged: pd.DataFrame) -> dict[str, FloatArray]:
    """Sorted latencies of each category of the judged samples."""
    out: dict[str, FloatArray] = {}
    if judged.empty:
        return out
    lat = judged["latency_ms"].to_numpy(dtype=np.float64)
    cats = judged["category"].astype("category")
    codes = cats.cat.codes.to_numpy()
    for i, name in enumerate(cats.cat.categories):
        sel = lat[codes == i]
        if len(sel):
            out[str(name)] = np.sort(sel)
    return out


def run_charts(data: RunData, summary: Summary) -> dict[str, Chart | None]:
    """Every chart of one run's report, keyed by section; a chart without data is None."""
    judged = data.judged
    n = len(judged)
    t0 = data.measured_from
    duration = summary["duration_s"] or 0.0
    after = f"{n:,} requests after warm-up, setup excluded"
    out: dict[str, Chart | None] = {}
    out["users"] = _users(data)
    if n:
        bins, width = charts.time_bins(judged["ts"].to_numpy(), t0, duration)
        out["latency_time"] = _latency_time(judged, bins, width, after)
        out["cdf"] = charts.cdf_by_group(
            category_latencies(judged), f"from samples.csv: {after}; exact, every request"
        )
        out["failures"] = _failures(judged, bins, width, after)
        out["server_timing"] = _server_timing(judged)
    out["cache"] = _cache(data)
    out["generator"] = _generator(data)
    out["stalls"] = _stalls(data, summary)
    return out


def _stalls(data: RunData, summary: Summary) -> Chart | None:
    figures = summary["generator"].get("stalls")
    if not figures or not figures["stalls"]:
        return None
    t0 = data.measured_from
    judged = data.judged
    t = np.array([], dtype=np.float64)
    p99 = np.array([], dtype=np.float64)
    if len(judged):
        ts = judged["ts"].to_numpy(dtype=np.float64)
        bins, width = charts.time_bins(ts, t0, summary["duration_s"] or 0.0)
        q = pd.Series(judged["latency_ms"].to_numpy()).groupby(bins).quantile(0.99)
        t, p99 = q.index.to_numpy(dtype=np.float64) * width, q.to_numpy(dtype=np.float64)
    across = data.across_stalls
    rows = figures["stalls"]
    return charts.stalls_beside_latency(
        t,
        p99,
        (
            across["ts"].to_numpy(dtype=np.float64) - t0,
            across["latency_ms"].to_numpy(dtype=np.float64),
        ),
        [(r["worker"], r["start"] - t0, r["length_s"]) for r in rows],
        f"from generator_health.json: {len(rows)} stalls over {figures['stall_s'] or 0:g} s of "
        f"{len({r['worker'] for r in rows})} process(es); from samples.csv: the judged p99 per "
        f"bin and the {len(across):,} requests in flight across a stall, left out",
    )


def _users(data: RunData) -> Chart | None:
    hist = data.locust_history
    source = "locust_stats_history.csv (Locust's own, every second)"
    if hist.empty:
        gen = data.generator
        if gen.empty:
            return None
        hist = pd.DataFrame({"ts": gen["ts"], "users": gen["users"], "rps": gen["achieved_rps"]})
        source = "generator.jsonl (the runner's watcher, every second)"
    start = float(hist["ts"].min())
    return charts.users_and_rps(
        hist["ts"].to_numpy(dtype=np.float64) - start,
        hist["users"].to_numpy(dtype=np.float64),
        hist["rps"].to_numpy(dtype=np.float64),
        data.measured_from - start,
        f"from {source}, {len(hist):,} rows; grey: warm-up, not judged",
    )


def _latency_time(
    judged: pd.DataFrame, bins: NDArray[np.int64], width: int, after: str
) -> Chart | None:
    # integer category codes, not strings: a million Python str objects would cost ~60 MB
    cats = judged["category"].astype("category")
    frame = pd.DataFrame(
        {"category": cats.cat.codes.to_numpy(), "bin": bins, "lat": judged["latency_ms"].to_numpy()}
    )
    q = frame.groupby(["category", "bin"])["lat"].quantile([0.5, 0.95, 0.99])  # type: ignore[arg-type]
    table = q.unstack()
    table.columns = ["p50", "p95", "p99"]
    names = [str(c) for c in cats.cat.categories]
    series = {}
    for code in sorted(set(table.index.get_level_values(0)), key=lambda c: names[c]):
        part = table.loc[code]
        part.index = part.index.to_numpy() * width
        series[names[code]] = part
    return charts.latency_over_time(
        series, width, f"from samples.csv: {after}; percentiles of each {width}-s bin"
    )


def _failures(
    judged: pd.DataFrame, bins: NDArray[np.int64], width: int, after: str
) -> Chart | None:
    length = int(bins.max()) + 1 if len(bins) else 0
    unexpected = np.bincount(
        bins, weights=(judged["expected"].to_numpy() == 0), minlength=length
    ).astype(np.float64)
    no_resp = np.bincount(
        bins, weights=(judged["status"].to_numpy() == 0), minlength=length
    ).astype(np.float64)
    t = np.arange(length, dtype=np.float64) * width
    k = int(unexpected.sum())
    return charts.failures_over_time(
        t,
        unexpected,
        no_resp,
        width,
        f"from samples.csv: {k:,} unexpected responses among {after}",
    )


def _server_timing(judged: pd.DataFrame) -> Chart | None:
    if "st_app" not in judged or judged["st_app"].isna().all():
        return None
    has = judged[judged["st_app"].notna()]
    frame = pd.DataFrame(
        {
            "endpoint": has["endpoint"].astype("category"),
            "app": has["st_app"].to_numpy(dtype=np.float64),
            "db": has["st_db"].fillna(0).to_numpy(dtype=np.float64),
            "hash": has["st_hash"].fillna(0).to_numpy(dtype=np.float64),
        }
    )
    means = frame.groupby("endpoint", observed=True).mean()
    table = pd.DataFrame(
        {
            "database": means["db"],
            "password hash": means["hash"],
            "other application": (means["app"] - means["db"] - means["hash"]).clip(lower=0),
        }
    )
    # means, not medians: means of the parts add up to the mean of the whole
    return charts.server_timing(
        table,
        f"from samples.csv Server-Timing (app, db, hash): {len(has):,} responses that carried "
        "it; means per request, app = the whole handler",
    )


def _cache(data: RunData) -> Chart | None:
    inc = counter_increases(data.metrics, data.measured_from)
    if inc.empty:
        return None
    duration = max(float(inc["ts"].max()) - data.measured_from, 1.0)
    # pool the processes' increases into windows: one worker's interval alone is too noisy
    width = max(10.0, duration / 120.0)
    window = ((inc["ts"] - data.measured_from) // width).astype(np.int64)
    sums = inc.drop(columns=["ts", "process"]).groupby(window.to_numpy()).sum(min_count=1)
    t = (sums.index.to_numpy(dtype=np.float64) + 1.0) * width
    rates: dict[str, FloatArray] = {}
    for tier in TIERS:
        h, miss = f"{tier}.hits", f"{tier}.misses"
        if h in sums and miss in sums:
            lookups = (sums[h] + sums[miss]).replace(0, np.nan)
            rates[tier] = (sums[h] / lookups).to_numpy(dtype=np.float64)
    if "L1.hits" in sums and "L1.misses" in sums:
        hits = sum(sums[f"{t}.hits"].fillna(0) for t in TIERS if f"{t}.hits" in sums)
        l1 = (sums["L1.hits"] + sums["L1.misses"]).replace(0, np.nan)
        rates["overall (L1+L2+L3)"] = (hits / l1).clip(upper=1).to_numpy(dtype=np.float64)
    if not rates:
        return None
    processes = inc["process"].nunique()
    return charts.cache_tiers(
        t,
        rates,
        f"from metrics.jsonl: {len(inc) + processes:,} scrapes after warm-up of {processes} "
        f"service process(es), counters' increase per {width:.0f}-s window; each tier's hits over "
        "its own lookups; overall = hits in any tier over L1 lookups",
    )


def _generator(data: RunData) -> Chart | None:
    gen = data.generator.dropna(subset=["ts"])
    if gen.empty:
        return None
    start = float(gen["ts"].min())
    intended = gen["intended_rps"].to_numpy(dtype=np.float64)
    return charts.generator_health(
        gen["ts"].to_numpy(dtype=np.float64) - start,
        gen["cpu_percent_max"].to_numpy(dtype=np.float64),
        gen["achieved_rps"].to_numpy(dtype=np.float64),
        intended if np.isfinite(intended).any() else None,
        CPU_SATURATED,
        f"from generator.jsonl: {len(gen):,} one-second readings of the load generator",
    )

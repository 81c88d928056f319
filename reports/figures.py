"""From a run's files to the report's charts: the data reduction behind each figure.

Every reduction is vectorised over the whole samples table once (integer time bins, one groupby,
one sort per category), so a one-hour run of a million requests costs a second or two here.
Each chart's caption names the file and the number of measurements it was drawn from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from velro_perf.reports import charts
from velro_perf.reports.charts import Chart
from velro_perf.reports.counters import TIERS, counter_increases
from velro_perf.reports.loading import RunData
from velro_perf.reports.runfiles import Summary
from velro_perf.reports.samples import SampleStore
from velro_perf.reports.validity import CPU_SATURATED

__all__ = ["run_charts"]
# the CDF's fractions: even steps through the body, then ever finer ones into the tail
CDF_PROBS = np.unique(
    np.concatenate([np.linspace(0.005, 1, 100), 1 - np.geomspace(0.1, 1e-6, 100)])
)

FloatArray = NDArray[np.float64]


def run_charts(data: RunData, summary: Summary) -> dict[str, Chart | None]:
    """Every chart of one run's report, keyed by section; a chart without data is None."""
    store = data.samples
    n = data.judged_totals.n
    t0 = data.measured_from
    duration = summary["duration_s"] or 0.0
    after = f"{n:,} requests after warm-up, setup excluded"
    source = store.source
    out: dict[str, Chart | None] = {}
    out["users"] = _users(data)
    if n:
        width = charts.bin_width(duration)
        out["latency_time"] = _latency_time(store, t0, width, f"from {source}: {after}")
        out["cdf"] = charts.cdf_by_group(
            store.category_quantiles(CDF_PROBS.tolist()),
            CDF_PROBS,
            f"from {source}: {after}; exact order statistics of every request",
        )
        out["failures"] = _failures(store, t0, width, f"from {source}: {after}")
        out["server_timing"] = _server_timing(store, source)
    out["cache"] = _cache(data)
    out["generator"] = _generator(data)
    out["stalls"] = _stalls(data, summary)
    return out


def _stalls(data: RunData, summary: Summary) -> Chart | None:
    figures = summary["generator"].get("stalls")
    if not figures or not figures["stalls"]:
        return None
    t0 = data.measured_from
    store = data.samples
    width = charts.bin_width(summary["duration_s"] or 0.0)
    binned = store.binned_percentiles(t0, width, (99.0,), by_category=False).sort_values("bin")
    t = binned["bin"].to_numpy(dtype=np.float64) * width
    p99 = binned["99.0"].to_numpy(dtype=np.float64)
    across = store.frame(("ts", "latency_ms"), scope="across_stalls")
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
        f"{len({r['worker'] for r in rows})} process(es); from {store.source}: the judged p99 per "
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


def _latency_time(store: SampleStore, t0: float, width: int, after: str) -> Chart | None:
    table = store.binned_percentiles(t0, width, (50.0, 95.0, 99.0))
    if table.empty:
        return None
    table.columns = ["category", "bin", "p50", "p95", "p99"]
    series = {}
    for name, part in sorted(table.groupby("category"), key=lambda kv: str(kv[0])):
        part = part.sort_values("bin")
        frame = part[["p50", "p95", "p99"]].set_index(part["bin"].to_numpy() * width)
        series[str(name)] = frame
    return charts.latency_over_time(
        series, width, f"{after}; percentiles (nearest rank) of each {width}-s bin"
    )


def _failures(store: SampleStore, t0: float, width: int, after: str) -> Chart | None:
    table = store.binned_failures(t0, width)
    if table.empty:
        return None
    length = int(table["bin"].max()) + 1
    unexpected = np.zeros(length)
    no_resp = np.zeros(length)
    bins = table["bin"].to_numpy(dtype=np.int64).clip(min=0)
    unexpected[bins] = table["unexpected"].to_numpy(dtype=np.float64)
    no_resp[bins] = table["no_response"].to_numpy(dtype=np.float64)
    t = np.arange(length, dtype=np.float64) * width
    k = int(unexpected.sum())
    return charts.failures_over_time(
        t, unexpected, no_resp, width, f"{after}; {k:,} unexpected responses"
    )


def _server_timing(store: SampleStore, source: str) -> Chart | None:
    means, carried = store.server_timing_means()
    if not carried:
        return None
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
        f"from {source} Server-Timing (app, db, hash): {carried:,} responses that carried "
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

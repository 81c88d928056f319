"""The service's cache counters in metrics.jsonl, and the hit rate over the tiers.

The cache hit rate over the tiers is defined as

    lookups = L1 hits + L1 misses          (every lookup starts at L1)
    hits    = L1 hits + L2 hits + L3 hits  (answered by some tier, not by the source)

over the counters' increase between the first scrape of metrics.jsonl at or after
``measured_from`` and the last one, summed over the service's worker processes (each scrape is
answered by one of them, with its own counters: see counter_increases), with Wilson's 95 %
interval (reports/analysis.py).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pandas as pd

__all__ = ["TIERS", "cache_counters", "counter_increases", "tier_counts"]

TIERS = ("L1", "L2", "L3")


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

"""The performance tracker: server-side timings per route, and the service's other figures.

The middleware calls ``Tracker.record(route, status, duration_ms)`` once per request, on the
event loop: a dict lookup, a few integer additions and one HDR histogram ``record_value``
(about 1 µs). Percentiles come from the histogram (1 µs to 60 s, 3 significant digits, so a
reported figure is within 0.1 % of the true one), never from a mean.

``snapshot()`` is the body of ``GET /api/v1/performance/metrics``; ``prometheus_text()`` is
``GET /metrics``, produced by a collector that reads the same snapshot, so the two never
disagree and nothing is recorded twice. Each ``Tracker`` has its own Prometheus registry (tests
build many apps in one process). Each worker process has its own tracker: the figures say which
process they come from (``"process": pid``).

The budgets of the PRD budgets file the service can judge itself are judged on the same
histograms, in every snapshot (``velro.budgets``); the Prometheus collector is
``velro.prometheus``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

from hdrh.histogram import HdrHistogram
from prometheus_client import CollectorRegistry, generate_latest

from velro.budgets import BudgetJudge, ServerBudget, load_budgets
from velro.prometheus import TrackerCollector

__all__ = ["Tracker"]

# HDR range in microseconds: 1 µs to 60 s; longer requests are recorded as 60 s.
LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 95.0, 99.0)
# Routes are "METHOD /template", so their number is bounded by the app's routes; a client
# sending made-up methods must not grow the table without end.
MAX_ROUTES = 512
OTHER_ROUTE = "OTHER"


class _Route:
    __slots__ = ("client_errors", "count", "errors", "hist", "memo", "rate_limited", "total_ms")

    def __init__(self) -> None:
        self.hist = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        self.count = 0
        self.errors = 0  # status >= 500
        self.client_errors = 0  # 4xx
        self.rate_limited = 0  # 429, also counted in client_errors
        self.total_ms = 0.0  # the Prometheus summary's _sum
        self.memo: tuple[int, dict[str, float]] | None = None


class Tracker:
    def __init__(self, budgets: Iterable[ServerBudget] | None = None) -> None:
        self._started = time.monotonic()
        self._routes: dict[str, _Route] = {}
        self._budget_judge = BudgetJudge(load_budgets() if budgets is None else budgets)
        self.budgets = self._budget_judge.budgets
        self._cache_stats: Callable[[], Mapping[str, Any]] | None = None
        self._executor_stats: Callable[[], Any] | None = None
        self._overload_stats: Callable[[], Mapping[str, Any]] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(TrackerCollector(self.snapshot, PERCENTILES))

    def bind(
        self,
        *,
        cache_stats: Callable[[], Mapping[str, Any]] | None = None,
        executor_stats: Callable[[], Any] | None = None,
        overload_stats: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        """Where the cache, executor and overload figures come from (the app's services)."""
        self._cache_stats = cache_stats
        self._executor_stats = executor_stats
        self._overload_stats = overload_stats

    # -- the hot path ----------------------------------------------------------------------

    def record(self, route: str, status: int, duration_ms: float) -> None:
        """Called by the middleware once per request with its server-side time."""
        r = self._routes.get(route)
        if r is None:
            r = self._new_route(route)
        us = int(duration_ms * 1000.0)
        r.hist.record_value(LOWEST_US if us < LOWEST_US else min(us, HIGHEST_US))
        r.count += 1
        r.total_ms += duration_ms
        if status >= 500:
            r.errors += 1
        elif status >= 400:
            r.client_errors += 1
            if status == 429:
                r.rate_limited += 1

    def _new_route(self, route: str) -> _Route:
        if len(self._routes) >= MAX_ROUTES:
            route = OTHER_ROUTE
        return self._routes.setdefault(route, _Route())

    # -- reading ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        routes = {name: self._route_figures(r) for name, r in sorted(self._routes.items())}
        cache = dict(self._cache_stats()) if self._cache_stats is not None else {}
        executor: dict[str, Any] = {}
        if self._executor_stats is not None:
            stats = self._executor_stats()
            executor = (
                asdict(stats)
                if is_dataclass(stats) and not isinstance(stats, type)
                else dict(stats)
            )
        return {
            "process": os.getpid(),
            "uptime_s": round(time.monotonic() - self._started, 3),
            "routes": routes,
            "cache": cache,
            "executor": executor,
            "rate_limit": {
                "rejections": sum(r.rate_limited for r in self._routes.values()),
                "by_route": {n: r.rate_limited for n, r in self._routes.items() if r.rate_limited},
            },
            # what the process refused rather than queued: sign-ins past the hashing budget's
            # queue, requests shed while the event loop lagged (hashbudget.py, admission.py)
            "overload": dict(self._overload_stats()) if self._overload_stats is not None else {},
            "budgets": self._budget_judge.judge_all(self._routes, cache),
        }

    def prometheus_text(self) -> bytes:
        return generate_latest(self.registry)

    def _route_figures(self, r: _Route) -> dict[str, Any]:
        # percentiles walk the histogram (about 0.5 ms): reuse them while the count is unchanged
        if r.memo is None or r.memo[0] != r.count:
            values = r.hist.get_percentile_to_value_dict(list(PERCENTILES))
            figures = {f"p{p:g}": values[p] / 1000.0 for p in PERCENTILES}
            figures["max"] = r.hist.get_max_value() / 1000.0 if r.count else 0.0
            figures["min"] = r.hist.get_min_value() / 1000.0 if r.count else 0.0
            r.memo = (r.count, figures)
        return {
            "count": r.count,
            "errors": r.errors,
            "client_errors": r.client_errors,
            "rate_limited": r.rate_limited,
            "sum_ms": round(r.total_ms, 3),
            **r.memo[1],
        }

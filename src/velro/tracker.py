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

Budgets are read from the PRD budgets file (``VELRO_BUDGETS_FILE``, else the repository's
``fixtures/budgets.toml``; none when absent) and judged here on the server-side histograms,
as point estimates: the gate's verdicts, with confidence intervals, come from the load run.
"""

from __future__ import annotations

import os
import re
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from velro.errors import ServiceConfigError

__all__ = ["Budget", "Tracker", "default_budgets_file", "load_budgets"]

# HDR range in microseconds: 1 µs to 60 s; longer requests are recorded as 60 s.
LOWEST_US = 1
HIGHEST_US = 60_000_000
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 95.0, 99.0)
# Routes are "METHOD /template", so their number is bounded by the app's routes; a client
# sending made-up methods must not grow the table without end.
MAX_ROUTES = 512
OTHER_ROUTE = "OTHER"

_PARAM = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True, slots=True)
class Budget:
    """One PRD budget the service can judge itself: latency (per endpoints) or hit rate."""

    id: str
    requirement: str
    kind: str
    endpoints: tuple[str, ...] = ()
    percentile: float | None = None
    max: float | None = None
    min: float | None = None


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
    def __init__(self, budgets: Iterable[Budget] | None = None) -> None:
        self._started = time.monotonic()
        self._routes: dict[str, _Route] = {}
        self.budgets = tuple(load_budgets() if budgets is None else budgets)
        self._cache_stats: Callable[[], Mapping[str, Any]] | None = None
        self._executor_stats: Callable[[], Any] | None = None
        self._overload_stats: Callable[[], Mapping[str, Any]] | None = None
        self._budget_memo: dict[str, tuple[tuple[int, ...], float | None]] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

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
            "budgets": [self._judge(b, cache) for b in self.budgets],
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

    def _judge(self, b: Budget, cache: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": b.id,
            "requirement": b.requirement,
            "kind": b.kind,
            "percentile": b.percentile,
            "max_ms": b.max if b.kind == "latency" else None,
            "measured_ms": None,
            "samples": 0,
            "holds": None,
        }
        if b.kind == "latency":
            measured, samples = self._latency(b)
            out["measured_ms"], out["samples"] = measured, samples
            if measured is not None and b.max is not None:
                out["holds"] = measured < b.max
        elif b.kind == "hit_rate":
            overall = cache.get("overall", {})
            rate = overall.get("hit_rate") if isinstance(overall, Mapping) else None
            out |= {"min": b.min, "measured": rate}
            out["samples"] = overall.get("lookups", 0) if isinstance(overall, Mapping) else 0
            if rate is not None and b.min is not None:
                out["holds"] = rate >= b.min
        return out

    def _latency(self, b: Budget) -> tuple[float | None, int]:
        wanted = {_template(e) for e in b.endpoints}
        matched = [r for name, r in self._routes.items() if _template(name) in wanted]
        samples = sum(r.count for r in matched)
        if not samples or b.percentile is None:
            return None, samples
        counts = tuple(r.count for r in matched)
        memo = self._budget_memo.get(b.id)
        if memo is not None and memo[0] == counts:
            return memo[1], samples
        if len(matched) == 1:
            merged = matched[0].hist
        else:
            merged = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
            for r in matched:
                merged.add(r.hist)
        measured = merged.get_value_at_percentile(b.percentile) / 1000.0
        self._budget_memo[b.id] = (counts, measured)
        return measured, samples


def _template(endpoint: str) -> str:
    """``GET /projects/{project_id}`` and ``GET /projects/{id}`` name one endpoint."""
    return _PARAM.sub("{}", endpoint.strip())


# -- Prometheus ----------------------------------------------------------------------------


class _Collector(Collector):
    """Yields the tracker's snapshot as Prometheus metrics at scrape time."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def collect(self) -> Iterator[Metric]:
        snap = self.tracker.snapshot()
        yield InfoMetricFamily(
            "velro_process",
            "The process these figures come from.",
            value={"pid": str(snap["process"])},
        )
        yield GaugeMetricFamily(
            "velro_uptime_seconds", "Seconds since the tracker started.", value=snap["uptime_s"]
        )
        yield from _route_metrics(snap["routes"])
        yield from _cache_metrics(snap["cache"])
        yield from _executor_metrics(snap["executor"])
        rejections = CounterMetricFamily(
            "velro_rate_limit_rejections", "Requests answered 429.", labels=["route"]
        )
        for route, n in snap["rate_limit"]["by_route"].items():
            rejections.add_metric([route], n)
        yield rejections
        yield from _budget_metrics(snap["budgets"])


def _route_metrics(routes: Mapping[str, Mapping[str, Any]]) -> Iterator[Metric]:
    requests = CounterMetricFamily("velro_requests", "Requests answered.", labels=["route"])
    errors = CounterMetricFamily(
        "velro_request_errors", "Requests answered with a status of 500 or more.", labels=["route"]
    )
    client = CounterMetricFamily(
        "velro_request_client_errors", "Requests answered with a 4xx status.", labels=["route"]
    )
    duration = Metric(
        "velro_request_duration_seconds",
        "Server-side request time, from an HDR histogram (3 significant digits).",
        "summary",
    )
    maximum = GaugeMetricFamily(
        "velro_request_duration_max_seconds", "Slowest request so far.", labels=["route"]
    )
    for route, f in routes.items():
        requests.add_metric([route], f["count"])
        errors.add_metric([route], f["errors"])
        client.add_metric([route], f["client_errors"])
        for p in PERCENTILES:
            duration.add_sample(
                "velro_request_duration_seconds",
                {"route": route, "quantile": f"{p / 100:g}"},
                f[f"p{p:g}"] / 1000.0,
            )
        duration.add_sample("velro_request_duration_seconds_count", {"route": route}, f["count"])
        duration.add_sample(
            "velro_request_duration_seconds_sum", {"route": route}, f["sum_ms"] / 1000.0
        )
        maximum.add_metric([route], f["max"] / 1000.0)
    yield from (requests, errors, client, duration, maximum)


def _cache_metrics(cache: Mapping[str, Any]) -> Iterator[Metric]:
    hits = CounterMetricFamily(
        "velro_cache_hits", "Cache lookups a tier answered.", labels=["tier"]
    )
    misses = CounterMetricFamily(
        "velro_cache_misses", "Cache lookups a tier did not answer.", labels=["tier"]
    )
    for tier in ("L1", "L2", "L3"):
        t = cache.get(tier)
        if isinstance(t, Mapping):
            hits.add_metric([tier], t.get("hits", 0))
            misses.add_metric([tier], t.get("misses", 0))
    yield hits
    yield misses
    overall = cache.get("overall")
    if isinstance(overall, Mapping):
        yield CounterMetricFamily(
            "velro_cache_lookups",
            "Cache lookups (L1 hits + L1 misses).",
            value=overall.get("lookups", 0),
        )
        if overall.get("hit_rate") is not None:
            yield GaugeMetricFamily(
                "velro_cache_hit_ratio",
                "Hits in L1+L2+L3 over lookups.",
                value=overall["hit_rate"],
            )
    if "loader_calls" in cache:
        yield CounterMetricFamily(
            "velro_cache_loader_calls", "Misses in every tier.", value=cache["loader_calls"]
        )
    l2 = cache.get("L2")
    if isinstance(l2, Mapping) and "errors" in l2:
        yield CounterMetricFamily(
            "velro_cache_l2_errors", "Redis calls that failed or timed out.", value=l2["errors"]
        )
        yield CounterMetricFamily(
            "velro_cache_l2_breaker_open",
            "Redis calls skipped by the open breaker.",
            value=l2["breaker_open"],
        )


def _executor_metrics(executor: Mapping[str, Any]) -> Iterator[Metric]:
    for name, doc in (
        ("workers", "Executor worker threads."),
        ("busy", "Executor workers running a call."),
        ("queued", "Calls waiting for an executor worker."),
    ):
        if name in executor:
            yield GaugeMetricFamily(f"velro_executor_{name}", doc, value=executor[name])
    if "timeouts" in executor:
        yield CounterMetricFamily(
            "velro_executor_timeouts",
            "Calls that outlived their timeout.",
            value=executor["timeouts"],
        )


def _budget_metrics(budgets: list[dict[str, Any]]) -> Iterator[Metric]:
    measured = GaugeMetricFamily(
        "velro_budget_measured", "A budget's measured figure (ms, or a fraction).", labels=["id"]
    )
    holds = GaugeMetricFamily(
        "velro_budget_holds", "1 when the budget holds, 0 when it does not.", labels=["id"]
    )
    for b in budgets:
        value = b["measured_ms"] if b["kind"] == "latency" else b.get("measured")
        if value is not None:
            measured.add_metric([b["id"]], value)
        if b["holds"] is not None:
            holds.add_metric([b["id"]], 1.0 if b["holds"] else 0.0)
    yield measured
    yield holds


# -- the budgets file ----------------------------------------------------------------------


def default_budgets_file() -> Path | None:
    """``VELRO_BUDGETS_FILE``, else the repository's ``fixtures/budgets.toml`` if present."""
    given = os.environ.get("VELRO_BUDGETS_FILE", "").strip()
    if given:
        path = Path(given)
        if not path.is_file():
            raise ServiceConfigError(
                f"VELRO_BUDGETS_FILE is {given!r}, which is not a file; give the path of a "
                "budgets.toml (docs/run-format.md) or unset it"
            )
        return path
    # src/velro/tracker.py -> the repository root, in a source checkout
    path = Path(__file__).resolve().parents[2] / "fixtures" / "budgets.toml"
    return path if path.is_file() else None


def load_budgets(path: Path | None = None) -> list[Budget]:
    """The latency and hit-rate budgets of a budgets file (the others need the load run)."""
    path = path or default_budgets_file()
    if path is None:
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ServiceConfigError(
            f"budgets file {path} cannot be read: {exc}; fix or remove it"
        ) from exc
    entries = data.get("budget", [])
    if not isinstance(entries, list):
        raise ServiceConfigError(
            f"budgets file {path}: 'budget' is not an array of tables; write [[budget]]"
        )
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or e.get("kind") not in ("latency", "hit_rate"):
            continue
        where = f"budgets file {path}, budget {e.get('id', f'#{i + 1}')!r}"
        try:
            out.append(
                Budget(
                    id=str(e["id"]),
                    requirement=str(e.get("requirement", "")),
                    kind=str(e["kind"]),
                    endpoints=tuple(str(x) for x in e.get("endpoints", ())),
                    percentile=_number(e.get("percentile")),
                    max=_number(e.get("max")),
                    min=_number(e.get("min")),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ServiceConfigError(
                f"{where} is malformed ({exc!r}); see docs/run-format.md"
            ) from exc
        b = out[-1]
        if b.kind == "latency" and (not b.endpoints or b.percentile is None or b.max is None):
            raise ServiceConfigError(
                f"{where}: a latency budget needs endpoints, percentile and max; "
                "see docs/run-format.md"
            )
    return out


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r} is not a number")
    return float(value)

"""The tracker's figures as Prometheus metrics (``GET /metrics``).

The collector reads the tracker's snapshot at scrape time, the same figures as
``GET /api/v1/performance/metrics``, so the two never disagree and nothing is recorded twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

__all__ = ["TrackerCollector"]


class TrackerCollector(Collector):
    """Yields the tracker's snapshot as Prometheus metrics at scrape time.

    ``percentiles`` are the ones the snapshot gives per route (``p50`` for 50.0, ...)."""

    def __init__(
        self, snapshot: Callable[[], Mapping[str, Any]], percentiles: tuple[float, ...]
    ) -> None:
        self.snapshot = snapshot
        self.percentiles = percentiles

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        yield InfoMetricFamily(
            "velro_process",
            "The process these figures come from.",
            value={"pid": str(snap["process"])},
        )
        yield GaugeMetricFamily(
            "velro_uptime_seconds", "Seconds since the tracker started.", value=snap["uptime_s"]
        )
        yield from _route_metrics(snap["routes"], self.percentiles)
        yield from _cache_metrics(snap["cache"])
        yield from _executor_metrics(snap["executor"])
        rejections = CounterMetricFamily(
            "velro_rate_limit_rejections", "Requests answered 429.", labels=["route"]
        )
        for route, n in snap["rate_limit"]["by_route"].items():
            rejections.add_metric([route], n)
        yield rejections
        yield from _budget_metrics(snap["budgets"])


def _route_metrics(
    routes: Mapping[str, Mapping[str, Any]], percentiles: tuple[float, ...]
) -> Iterator[Metric]:
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
        for p in percentiles:
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

"""The figures served at /api/v1/performance/metrics and /metrics match the requests a client
made to a real server on a loopback socket."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

N = 40
_APP_DUR = re.compile(r"app;dur=([0-9.]+)")
# How much later than the client the server may read its clock at the end of a request: the
# response is on the wire before the middleware's ``finally`` runs. In one process the GIL
# keeps this to microseconds unless the OS preempts the server thread; 5 ms covers that and
# still catches a wrong unit (µs for ms is a factor of 1000).
CLOCK_SLACK_MS = 5.0


def test_route_counts_and_percentiles_match_the_requests_made(
    make_settings: Callable[..., Any], live_server: Callable[..., Any]
) -> None:
    server = live_server(make_settings())
    client_ms: list[float] = []
    app_ms: list[float] = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(N):
            response = client.get("/health")
            client_ms.append(response.elapsed.total_seconds() * 1000)
            match = _APP_DUR.search(response.headers["server-timing"])
            assert match is not None
            app_ms.append(float(match.group(1)))
        for _ in range(3):
            assert client.get("/api/v1/no/such/thing").status_code == 404
        first = client.get("/api/v1/performance/metrics").json()
        body = client.get("/api/v1/performance/metrics").json()
        text = client.get("/metrics").text

    route = body["routes"]["GET /health"]
    assert route["count"] == N
    assert route["errors"] == 0
    assert route["client_errors"] == 0
    assert body["routes"]["GET unmatched"]["client_errors"] == 3
    # once per request: the first metrics call is counted by the time of the second
    metrics_routes = [r for r in body["routes"] if r.endswith("/performance/metrics")]
    assert not [r for r in first["routes"] if r.endswith("/performance/metrics")]
    assert [body["routes"][r]["count"] for r in metrics_routes] == [1]
    assert body["process"] == os.getpid()
    settings = make_settings()
    assert body["executor"]["workers"] == settings.executor_workers + settings.hash_workers
    assert set(body["cache"]) >= {"L1", "L2", "L3", "overall"}
    assert {"rejections"} <= set(body["rate_limit"])
    assert isinstance(body["budgets"], list)

    # Each request's tracked time starts with its Server-Timing app;dur and ends a little
    # later, inside the client's own timing: the order statistics are bounded both ways.
    p50, p95, p99, top = route["p50"], route["p95"], route["p99"], route["max"]
    assert 0 < p50 <= p95 <= p99 <= top
    app_sorted, client_sorted = sorted(app_ms), sorted(client_ms)
    assert top >= app_sorted[-1] - 0.002
    assert p50 >= app_sorted[N // 2 - 2] - 0.002
    assert top <= client_sorted[-1] * 1.001 + CLOCK_SLACK_MS
    assert p50 <= client_sorted[N // 2 + 1] * 1.001 + CLOCK_SLACK_MS

    families = {f.name: f for f in text_string_to_metric_families(text)}
    counts = {s.labels["route"]: s.value for s in families["velro_requests"].samples}
    assert counts["GET /health"] == N
    quantiles = {
        s.labels["quantile"]: s.value
        for s in families["velro_request_duration_seconds"].samples
        if s.labels.get("route") == "GET /health" and "quantile" in s.labels
    }
    assert quantiles["0.5"] * 1000 == p50 or abs(quantiles["0.5"] * 1000 - p50) < 1e-6


def test_a_route_under_the_api_prefix_is_named_by_its_full_template(
    make_settings: Callable[..., Any], live_server: Callable[..., Any]
) -> None:
    # The contract and the budgets name endpoints "GET /api/v1/auth/me"; the tracker can only
    # match budgets to routes named that way.
    server = live_server(make_settings())
    with httpx.Client(base_url=server.url, timeout=10) as client:
        client.get("/api/v1/performance/metrics")
        routes = client.get("/api/v1/performance/metrics").json()["routes"]
    assert "GET /api/v1/performance/metrics" in routes, sorted(routes)


def test_cache_and_rate_limit_figures_follow_what_the_client_saw(
    make_settings: Callable[..., Any], live_server: Callable[..., Any]
) -> None:
    from velro.db import Database

    settings = make_settings(login_failures_per_account="3/minute")
    db = Database(settings.database_url)
    db.create_all()
    db.close()
    server = live_server(settings)
    with httpx.Client(base_url=server.url + "/api/v1", timeout=10) as client:
        email, password = "metrics@example.com", "a long enough password"
        assert client.post("/auth/register", json={"email": email, "password": password}).is_success
        token = client.post("/auth/login", json={"email": email, "password": password}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        before = client.get("/performance/metrics").json()["cache"]
        tiers = []
        for _ in range(10):
            r = client.get("/auth/me", headers=headers)
            assert r.status_code == 200
            tiers.append(re.search(r'cache;desc="(\w+)"', r.headers["server-timing"]))
        after = client.get("/performance/metrics").json()
        statuses = [
            client.post(
                "/auth/login", json={"email": email, "password": "wrong password"}
            ).status_code
            for _ in range(5)
        ]
        final = client.get("/performance/metrics").json()
    text = httpx.get(server.url + "/metrics").text

    seen = [m.group(1) for m in tiers if m is not None]
    assert len(seen) == 10
    assert all(t == "L1" for t in seen[1:])  # the user record stays in L1
    l1_hits = after["cache"]["L1"]["hits"] - before["L1"]["hits"]
    assert l1_hits >= seen.count("L1")
    assert after["cache"]["overall"]["lookups"] > before["overall"]["lookups"]
    families = {f.name: f for f in text_string_to_metric_families(text)}
    prom_hits = {s.labels["tier"]: s.value for s in families["velro_cache_hits"].samples}
    assert prom_hits["L1"] >= after["cache"]["L1"]["hits"]  # counters only grow
    assert 429 in statuses
    assert final["rate_limit"]["rejections"] == statuses.count(429)
    [login_route] = [r for r in final["routes"] if r.endswith("/auth/login")]
    assert final["routes"][login_route]["client_errors"] == statuses.count(429) + statuses.count(
        401
    )

"""The performance tracker: exact-enough percentiles from an HDR histogram, status classes,
budgets judged on the listed endpoints, and Prometheus text from the same figures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from velro.budgets import ServerBudget, load_budgets
from velro.errors import ServiceConfigError
from velro.executor import ExecutorStats
from velro.tracker import MAX_ROUTES, OTHER_ROUTE, Tracker

REPO = Path(__file__).resolve().parents[1]


def samples(text: bytes, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_percentiles_come_from_the_histogram_within_its_precision() -> None:
    t = Tracker(budgets=[])
    for ms in range(1, 1001):  # 1 ms .. 1000 ms, once each
        t.record("GET /x", 200, float(ms))
    r = t.snapshot()["routes"]["GET /x"]
    assert r["count"] == 1000
    # 3 significant digits: within 0.1 % of the exact order statistic
    assert r["p50"] == pytest.approx(500, rel=1e-3)
    assert r["p95"] == pytest.approx(950, rel=1e-3)
    assert r["p99"] == pytest.approx(990, rel=1e-3)
    assert r["max"] == pytest.approx(1000, rel=1e-3)
    assert r["min"] == pytest.approx(1, rel=1e-3)


def test_statuses_are_counted_by_class_and_429_as_a_rate_limit_rejection() -> None:
    t = Tracker(budgets=[])
    for status in (200, 204, 401, 404, 429, 429, 500, 503):
        t.record("POST /api/v1/auth/login", status, 3.0)
    t.record("GET /other", 429, 1.0)
    snap = t.snapshot()
    r = snap["routes"]["POST /api/v1/auth/login"]
    assert (r["count"], r["errors"], r["client_errors"], r["rate_limited"]) == (8, 2, 4, 2)
    assert snap["rate_limit"]["rejections"] == 3
    assert snap["process"] == os.getpid()


def test_an_extreme_duration_is_clamped_into_the_histogram_and_still_counted() -> None:
    t = Tracker(budgets=[])
    t.record("GET /x", 200, 0.0)
    t.record("GET /x", 200, 120_000.0)  # two minutes: over the 60 s range
    r = t.snapshot()["routes"]["GET /x"]
    assert r["count"] == 2
    assert r["max"] == pytest.approx(60_000, rel=1e-3)


def test_made_up_routes_cannot_grow_the_table_without_end() -> None:
    t = Tracker(budgets=[])
    for i in range(MAX_ROUTES + 10):
        t.record(f"M{i} unmatched", 405, 1.0)
    routes = t.snapshot()["routes"]
    assert len(routes) == MAX_ROUTES + 1
    assert routes[OTHER_ROUTE]["count"] == 10


def test_a_latency_budget_is_judged_over_its_endpoints_whatever_their_parameter_names() -> None:
    budget = ServerBudget(
        id="authorization.p95",
        requirement="authorization",
        kind="latency",
        endpoints=("GET /api/v1/authz/check", "GET /api/v1/projects/{id}"),
        percentile=95,
        max=75.0,
    )
    t = Tracker(budgets=[budget])
    for ms in range(1, 51):
        t.record("GET /api/v1/authz/check", 200, float(ms))
        t.record("GET /api/v1/projects/{project_id}", 200, float(ms + 50))
    t.record("GET /api/v1/auth/me", 200, 10_000.0)  # not one of the budget's endpoints
    [b] = t.snapshot()["budgets"]
    assert b["samples"] == 100
    assert b["measured_ms"] == pytest.approx(95, rel=1e-3)
    assert b["holds"] is False
    assert (b["id"], b["percentile"], b["max_ms"]) == ("authorization.p95", 95, 75.0)


def test_a_budget_without_samples_neither_holds_nor_fails() -> None:
    t = Tracker(budgets=[ServerBudget("login.p95", "login", "latency", ("POST /x",), 95, 200.0)])
    [b] = t.snapshot()["budgets"]
    assert (b["measured_ms"], b["holds"], b["samples"]) == (None, None, 0)


def test_cache_and_executor_figures_come_from_what_the_tracker_is_bound_to() -> None:
    t = Tracker(budgets=[ServerBudget("cache.hit_rate", "cache hit rate", "hit_rate", min=0.95)])
    cache = {
        "L1": {"hits": 90, "misses": 10, "hit_rate": 0.9},
        "L2": {"hits": 6, "misses": 4, "hit_rate": 0.6},
        "L3": {"hits": 1, "misses": 3, "hit_rate": 0.25},
        "overall": {"lookups": 100, "hits": 97, "hit_rate": 0.97},
    }
    t.bind(
        cache_stats=lambda: cache,
        executor_stats=lambda: ExecutorStats(workers=20, busy=3, queued=1, timeouts=2, completed=9),
    )
    snap = t.snapshot()
    assert snap["cache"] == cache
    assert snap["executor"]["workers"] == 20
    assert (snap["executor"]["busy"], snap["executor"]["queued"]) == (3, 1)
    [b] = snap["budgets"]
    assert (b["measured"], b["holds"]) == (0.97, True)
    text = t.prometheus_text()
    assert samples(text, "velro_cache_hits_total") == {
        (("tier", "L1"),): 90.0,
        (("tier", "L2"),): 6.0,
        (("tier", "L3"),): 1.0,
    }
    assert samples(text, "velro_executor_timeouts_total") == {(): 2.0}
    assert samples(text, "velro_budget_holds") == {(("id", "cache.hit_rate"),): 1.0}


def test_prometheus_text_matches_the_snapshot_and_each_tracker_has_its_own_registry() -> None:
    a, b = Tracker(budgets=[]), Tracker(budgets=[])
    for ms in (1.0, 2.0, 3.0, 4.0):
        a.record("GET /api/v1/auth/me", 200, ms)
    a.record("GET /api/v1/auth/me", 500, 5.0)
    b.record("GET /health", 200, 1.0)
    text = a.prometheus_text()
    route = (("route", "GET /api/v1/auth/me"),)
    assert samples(text, "velro_requests_total") == {route: 5.0}
    assert samples(text, "velro_request_errors_total") == {route: 1.0}
    assert samples(text, "velro_request_duration_seconds_count") == {route: 5.0}
    assert samples(text, "velro_request_duration_seconds_sum")[route] == pytest.approx(0.015)
    p99 = a.snapshot()["routes"]["GET /api/v1/auth/me"]["p99"]
    quantiles = samples(text, "velro_request_duration_seconds")
    assert quantiles[(("quantile", "0.99"), *route)] == pytest.approx(p99 / 1000)
    assert "GET /health" not in text.decode()


def test_the_repository_budgets_file_gives_the_latency_and_hit_rate_budgets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VELRO_BUDGETS_FILE", raising=False)
    budgets = load_budgets()
    kinds = {b.kind for b in budgets}
    assert kinds <= {"latency", "hit_rate"}
    latency = [b for b in budgets if b.kind == "latency"]
    assert latency
    assert all(b.endpoints and b.percentile and b.max for b in latency)


def test_a_budgets_file_is_found_through_the_environment_and_a_bad_one_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    good = tmp_path / "budgets.toml"
    good.write_text(
        '[[budget]]\nid = "a.p95"\nrequirement = "a"\nkind = "latency"\n'
        'endpoints = ["GET /a"]\npercentile = 95\nmax = 10.0\n'
        '[[budget]]\nid = "u"\nrequirement = "users"\nkind = "users"\nmin = 5\n'
    )
    monkeypatch.setenv("VELRO_BUDGETS_FILE", str(good))
    assert [b.id for b in Tracker().budgets] == ["a.p95"]

    monkeypatch.setenv("VELRO_BUDGETS_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(ServiceConfigError, match="VELRO_BUDGETS_FILE"):
        Tracker()

    bad = tmp_path / "bad.toml"
    bad.write_text('[[budget]]\nid = "b.p95"\nkind = "latency"\nmax = 10.0\n')
    with pytest.raises(ServiceConfigError, match=r"'b\.p95'.*endpoints, percentile and max"):
        load_budgets(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[budget]\n")
    with pytest.raises(ServiceConfigError, match=r"broken\.toml"):
        load_budgets(broken)


def test_an_empty_budgets_file_means_no_budgets(tmp_path: Path) -> None:
    empty: Any = tmp_path / "empty.toml"
    empty.write_text("")
    assert load_budgets(empty) == []
    assert Tracker(budgets=[]).snapshot()["budgets"] == []

"""Verdicts on small hand-made runs: pass, fail, inconclusive, no_data, not_applicable, invalid."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from velro_perf.reports.analysis import summarize, write_summary
from velro_perf.reports.budgets import Budgets, load_budgets
from velro_perf.reports.counters import cache_counters
from velro_perf.reports.history import append_history, read_history
from velro_perf.reports.junit import write_junit

T0 = 1_764_000_000.0
AUTH = "GET /api/v1/auth/me"

BUDGETS = """
prd = "test"
[[budget]]
id = "auth.p95"
requirement = "authentication"
description = "auth is quick"
kind = "latency"
endpoints = ["GET /api/v1/auth/me"]
percentile = 95
max = 95.0

[[budget]]
id = "register.p95"
requirement = "registration"
description = "register is quick"
kind = "latency"
endpoints = ["POST /api/v1/auth/register"]
percentile = 95
max = 300.0

[[budget]]
id = "users"
requirement = "concurrent users"
description = "many users"
kind = "users"
min = 100
shapes = ["ramp-10k"]

[[budget]]
id = "errors"
requirement = "unexpected errors"
description = "few errors"
kind = "error_rate"
max = 0.001

[[budget]]
id = "cache"
requirement = "cache hit rate"
description = "cache hits"
kind = "hit_rate"
min = 0.95

[[budget]]
id = "tier.l1"
requirement = "L1"
description = "L1 is quick"
kind = "microbenchmark"
benchmarks = ["test_l1_hit"]
percentile = 99
max = 5.0
"""

RunFactory = Callable[..., Path]


@pytest.fixture
def budgets(tmp_path: Path) -> Budgets:
    path = tmp_path / "budgets.toml"
    path.write_text(BUDGETS, encoding="utf-8")
    return load_budgets(path)


@pytest.fixture
def make_run(tmp_path: Path) -> RunFactory:
    """Write a run directory from plain latencies of GET /auth/me after a 10-s warm-up."""

    def make(
        latencies: Sequence[float],
        *,
        name: str = "run",
        shape: str = "steady",
        unexpected: int = 0,
        cpu: float | Sequence[float] = 30.0,
        warmup: Sequence[float] = (),
        users: Sequence[int] | None = None,
        metrics: list[dict[str, Any]] | None = None,
        complete: bool = True,
    ) -> Path:
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        n = len(latencies)
        ts = T0 + 10 + np.linspace(0, 60, n, endpoint=False)
        expected = np.ones(n, dtype=int)
        expected[:unexpected] = 0
        rows = pd.DataFrame(
            {
                "ts": ts,
                "endpoint": AUTH,
                "category": "authentication",
                "latency_ms": np.asarray(latencies, dtype=float),
                "status": 200,
                "expected": expected,
                "worker": "local",
            }
        )
        before = pd.DataFrame(
            {
                "ts": T0 + np.arange(len(warmup)) * 0.01,
                "endpoint": AUTH,
                "category": "authentication",
                "latency_ms": list(warmup),
                "status": 200,
                "expected": 1,
                "worker": "local",
            }
        )
        setup = pd.DataFrame(
            {
                "ts": [T0 + 20],
                "endpoint": ["POST /api/v1/auth/register"],
                "category": ["setup"],
                "latency_ms": [99_999.0],
                "status": [201],
                "expected": [1],
                "worker": ["local"],
            }
        )
        pd.concat([before, setup, rows]).to_csv(run / "samples.csv", index=False)
        (run / "config.json").write_text(
            json.dumps(
                {
                    "shape": shape,
                    "service_profile": "fixed",
                    "target": "http://127.0.0.1:1",
                    "config_hash": "abc",
                }
            )
        )
        (run / "meta.json").write_text(
            json.dumps(
                {
                    "run_id": name,
                    "started_at": "2026-11-25T00:00:00+00:00",
                    "measured_from": T0 + 10,
                    "complete": complete,
                    "interrupted": None if complete else "SIGINT",
                }
            )
        )
        with (run / "generator.jsonl").open("w") as fh:
            for s in range(71):
                fh.write(
                    json.dumps(
                        {
                            "ts": T0 + s,
                            "cpu_percent_max": cpu if isinstance(cpu, float) else cpu[s],
                            "users": 10,
                            "intended_rps": None,
                            "achieved_rps": 10.0,
                        }
                    )
                    + "\n"
                )
        if users is not None:
            pd.DataFrame(
                {
                    "Timestamp": T0 + np.arange(len(users)),
                    "User Count": users,
                    "Type": "",
                    "Name": "Aggregated",
                    "Requests/s": 1.0,
                    "Failures/s": 0.0,
                }
            ).to_csv(run / "locust_stats_history.csv", index=False)
        if metrics is not None:
            with (run / "metrics.jsonl").open("w") as fh:
                for m in metrics:
                    fh.write(json.dumps(m) + "\n")
        return run

    return make


def verdicts(summary: dict[str, Any]) -> dict[str, str]:
    return {b["id"]: b["verdict"] for b in summary["budgets"]}


def test_quick_requests_pass_and_the_run_passes(make_run: RunFactory, budgets: Budgets) -> None:
    # 5,000 requests without an unexpected one: enough to bound the error rate under 0.1 %
    s = summarize(make_run(np.linspace(1, 20, 5000)), budgets)
    v = verdicts(s)
    assert v["auth.p95"] == "pass"
    assert v["errors"] == "pass"
    assert s["verdict"] == "pass"
    assert s["exit_code"] == 0
    auth = next(b for b in s["budgets"] if b["id"] == "auth.p95")
    assert auth["ci_low"] <= auth["measured"] <= auth["ci_high"] < 95.0
    assert auth["samples"] == 5000
    assert "pass" in auth["sentence"]


def test_too_few_requests_cannot_show_a_small_error_rate(
    make_run: RunFactory, budgets: Budgets
) -> None:
    # 0 unexpected in 1,000: the 95 % interval reaches 0.37 %, over the 0.1 % bound
    s = summarize(make_run(np.full(1000, 3.0)), budgets)
    assert verdicts(s)["errors"] == "inconclusive"
    assert s["verdict"] == "inconclusive"


def test_slow_requests_fail_the_run(make_run: RunFactory, budgets: Budgets) -> None:
    s = summarize(make_run(np.linspace(100, 500, 1000)), budgets)
    assert verdicts(s)["auth.p95"] == "fail"
    assert s["verdict"] == "fail"
    assert s["exit_code"] == 1


def test_an_interval_straddling_the_bound_is_inconclusive(
    make_run: RunFactory, budgets: Budgets
) -> None:
    # 200 samples 0.5, 1.0, ..., 100: p95 is 95.0 and its interval spans roughly 92 to 98.5
    s = summarize(make_run(np.arange(1, 201) * 0.5), budgets)
    auth = next(b for b in s["budgets"] if b["id"] == "auth.p95")
    assert auth["ci_low"] < 95.0 <= auth["ci_high"]
    assert auth["verdict"] == "inconclusive"
    assert s["verdict"] == "inconclusive"
    assert s["exit_code"] == 1


def test_budgets_without_samples_shape_or_load_run_are_not_judged(
    make_run: RunFactory, budgets: Budgets
) -> None:
    s = summarize(make_run(np.full(5000, 3.0)), budgets)
    v = verdicts(s)
    assert v["register.p95"] == "no_data"  # no requests to that endpoint (setup is excluded)
    assert v["users"] == "not_applicable"  # steady shape, budget lists ramp-10k
    assert v["tier.l1"] == "not_applicable"  # microbenchmarks are judged by velro-perf bench
    assert v["cache"] == "no_data"  # no metrics.jsonl: a backend without metrics
    assert s["verdict"] == "pass"


def test_warm_up_and_setup_requests_are_never_judged(
    make_run: RunFactory, budgets: Budgets
) -> None:
    s = summarize(make_run(np.full(500, 3.0), warmup=[10_000.0] * 300), budgets)
    assert verdicts(s)["auth.p95"] == "pass"
    assert s["requests"] == 500
    assert s["endpoints"][0]["max"] == 3.0


def test_a_saturated_generator_makes_the_run_invalid(
    make_run: RunFactory, budgets: Budgets
) -> None:
    s = summarize(make_run(np.full(500, 3.0), cpu=97.0), budgets)
    assert s["verdict"] == "invalid"
    assert s["exit_code"] == 3
    assert s["generator"]["saturated"] is True
    assert any("averaged 97 % of a core over 5 s" in r for r in s["invalid_reasons"])


def test_a_sustained_window_over_the_limit_invalidates_but_a_moment_does_not(
    make_run: RunFactory, budgets: Budgets
) -> None:
    stretch = [30.0] * 40 + [96.0] * 6 + [30.0] * 25
    s = summarize(make_run(np.full(500, 3.0), cpu=stretch, name="stretch"), budgets)
    assert s["verdict"] == "invalid"
    reason = next(r for r in s["invalid_reasons"] if "generator process" in r)
    assert "averaged 96 %" in reason
    assert "+30 s from the measured start" in reason  # the stretch begins 40 s in, 30 s judged
    spike = [30.0] * 40 + [99.0] * 3 + [30.0] * 28
    s = summarize(make_run(np.full(500, 3.0), cpu=spike, name="spike"), budgets)
    assert s["generator"]["saturated"] is False
    assert s["verdict"] != "invalid"


def test_a_lost_worker_or_an_overshoot_makes_the_run_invalid_and_says_when(
    make_run: RunFactory, budgets: Budgets
) -> None:
    run = make_run(np.full(500, 3.0))
    (run / "generator_health.json").write_text(
        json.dumps(
            {
                "heartbeat_liveness": 10,
                "events": [
                    {"kind": "worker_missing", "ts": T0 + 25, "worker": "w-1", "users": 60},
                    {"kind": "overshoot", "ts": T0 + 40, "shape_users": 60, "max_users": 90,
                     "duration_s": 12.0},
                ],
            }
        )
    )  # fmt: skip
    s = summarize(run, budgets)
    assert (s["verdict"], s["exit_code"]) == ("invalid", 3)
    missing, over = s["invalid_reasons"]
    assert "worker w-1 went missing" in missing
    assert "+15 s from the measured start" in missing
    assert "no heartbeat for 10 s while 60 users ran" in missing
    assert over.startswith("90 users ran against the shape's 60")
    assert "for 12.0 s" in over


def test_too_few_samples_make_the_run_invalid(make_run: RunFactory, budgets: Budgets) -> None:
    s = summarize(make_run(np.full(50, 3.0)), budgets)
    assert s["verdict"] == "invalid"
    assert s["exit_code"] == 3
    assert any("only 50 requests" in r for r in s["invalid_reasons"])


def test_unexpected_responses_beyond_the_rate_fail(make_run: RunFactory, budgets: Budgets) -> None:
    s = summarize(make_run(np.full(1000, 3.0), unexpected=5), budgets)
    errors = next(b for b in s["budgets"] if b["id"] == "errors")
    assert errors["measured"] == pytest.approx(0.005)
    assert errors["ci_low"] > 0.001
    assert errors["verdict"] == "fail"
    assert s["endpoints"][0]["failures"] == 5


def _scrape(ts: float, l1: tuple[int, int], l2h: int, l3h: int) -> dict[str, Any]:
    return {
        "ts": ts,
        "metrics": {
            "cache": {
                "L1": {"hits": l1[0], "misses": l1[1]},
                "L2": {"hits": l2h, "misses": 0},
                "L3": {"hits": l3h},
            }
        },
    }


def test_hit_rate_counts_every_tier_over_l1_lookups_after_warm_up(
    make_run: RunFactory, budgets: Budgets
) -> None:
    metrics = [
        _scrape(T0 + 5, (0, 0), 0, 0),  # during warm-up: ignored
        _scrape(T0 + 10, (100, 100), 50, 10),
        {"ts": T0 + 20, "metrics": {"routes": {}}},  # a scrape without cache: tolerated
        _scrape(T0 + 70, (9_100, 1_100), 850, 110),
    ]
    # after warm-up: 9,000 L1 hits + 1,000 L1 misses = 10,000 lookups;
    # 9,000 + 800 (L2) + 100 (L3) = 9,900 hits -> 99 %
    assert cache_counters(metrics, T0 + 10) == (9_900, 10_000)
    s = summarize(make_run(np.full(500, 3.0), metrics=metrics), budgets)
    cache = next(b for b in s["budgets"] if b["id"] == "cache")
    assert cache["measured"] == pytest.approx(0.99)
    assert cache["verdict"] == "pass"


def test_the_metrics_reader_tolerates_other_shapes_of_the_body() -> None:
    lower = [
        {"ts": 10, "metrics": {"cache": {"l1": {"hits": 10, "misses": 10}}}},
        {
            "ts": 20,
            "metrics": {
                "cache": {"tiers": {"L1": {"hits": 90, "misses": 30}, "L2": {"hits": "n/a"}}}
            },
        },
        {"ts": 30, "metrics": None},
        {"metrics": {"cache": {}}},
    ]
    assert cache_counters(lower, 0) == (80, 100)
    assert cache_counters([{"ts": 1, "metrics": {"routes": {}}}] * 3, 0) == (None, None)


def test_counters_of_different_service_processes_are_not_mixed() -> None:
    def scrape(ts: float, pid: int, hits: int, misses: int) -> dict[str, Any]:
        return {
            "ts": ts,
            "metrics": {"process": pid, "cache": {"L1": {"hits": hits, "misses": misses}}},
        }

    # two workers answer the scrapes in turn; each one's counters grow by 90 hits + 10 misses
    metrics = [
        scrape(10, 1, 1000, 0),
        scrape(12, 2, 5, 5),
        scrape(14, 1, 1090, 10),
        scrape(16, 2, 95, 15),
    ]
    assert cache_counters(metrics, 0) == (180, 200)


def test_a_restarted_counter_is_counted_from_its_new_value() -> None:
    metrics = [
        _scrape(10, (100, 0), 0, 0),
        _scrape(20, (200, 0), 0, 0),
        _scrape(30, (50, 50), 0, 0),
    ]
    assert cache_counters(metrics, 0) == (150, 200)


def test_users_are_held_only_while_latency_holds(make_run: RunFactory, budgets: Budgets) -> None:
    # users climb by 2 a second to 150; requests from t = 10 + 60 * 1200/1400 ~ 61 s are slow,
    # so the 10-s window 50-60 s (110 users or more) is the last that holds
    users = [min(150, 10 + 2 * s) for s in range(71)]
    lat = np.full(1400, 3.0)
    lat[1200:] = 500.0
    s = summarize(make_run(lat, shape="ramp-10k", users=users), budgets)
    u = next(b for b in s["budgets"] if b["id"] == "users")
    assert u["verdict"] == "pass"
    assert u["measured"] == 110
    s_slow = summarize(
        make_run(np.full(1400, 500.0), name="slow", shape="ramp-10k", users=users), budgets
    )
    assert next(b for b in s_slow["budgets"] if b["id"] == "users")["verdict"] == "fail"


def test_an_interrupted_run_says_so(make_run: RunFactory, budgets: Budgets) -> None:
    s = summarize(make_run(np.full(500, 3.0), complete=False), budgets)
    assert s["complete"] is False
    assert "SIGINT" in s["warnings"][0]


def test_summary_junit_and_history_are_written(
    make_run: RunFactory, budgets: Budgets, tmp_path: Path
) -> None:
    run = make_run(np.linspace(100, 500, 1000))
    s = summarize(run, budgets)
    path = write_summary(run, {**s, "odd": [float("nan"), np.float32(1.5), np.int64(2)]})
    written = json.loads(path.read_text())
    assert written["verdict"] == "fail"
    assert written["odd"] == [None, 1.5, 2]  # JSON has no NaN; numpy scalars are plain numbers

    junit = write_junit(s, tmp_path / "junit.xml")
    suite = ET.parse(junit).getroot().find("testsuite")  # noqa: S314 - the file just written
    assert suite is not None
    assert suite.get("tests") == str(len(s["budgets"]))
    assert suite.get("failures") == "1"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["auth.p95"]

    runs_root = run.parent
    append_history(runs_root, s)
    append_history(runs_root, s)  # the same run again replaces its row
    second = dict(s, run_id="run-2", budgets=[*s["budgets"], {"id": "new.budget", "measured": 1}])
    append_history(runs_root, second)
    hist = read_history(runs_root)
    assert list(hist["run_id"]) == ["run", "run-2"]
    assert "auth.p95" in hist.columns
    assert hist.loc[1, "new.budget"] == 1
    assert hist.loc[0, "config_hash"] == "abc"

"""`velro-perf bench`: the tier budgets are judged on the p99 of the saved rounds."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from velro_perf.bench.cli import judge
from velro_perf.bench.compare import anchor_ratios, judge_tier_budgets, percentile_ms

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = ROOT / "fixtures" / "budgets.toml"


def bench(name: str, rounds_ms: list[float], **extra: Any) -> dict[str, Any]:
    data = [x / 1e3 for x in rounds_ms]
    return {
        "name": name,
        "extra_info": extra,
        "stats": {"median": float(np.median(data)), "rounds": len(data), "data": data},
    }


def healthy() -> list[dict[str, Any]]:
    return [
        bench("test_l1_hit", [0.01] * 100, anchor="test_l1_anchor_dict", tier="L1"),
        bench("test_l1_anchor_dict", [0.002] * 100, tier="L1"),
        bench("test_l2_hit", [0.3] * 100, tier="L2"),
        bench("test_l3_hit_sqlite", [0.5] * 100, tier="L3"),
    ]


def test_p99_is_the_nearest_rank_of_the_rounds() -> None:
    b = bench("t", [float(i) for i in range(1, 101)])  # 1..100 ms
    assert percentile_ms(b, 99) == pytest.approx(99.0)
    assert percentile_ms(b, 50) == pytest.approx(50.0)
    assert percentile_ms({"stats": {}}, 99) is None


def test_budgets_pass_when_every_tier_p99_is_under_its_bound() -> None:
    results = judge_tier_budgets({"benchmarks": healthy()}, BUDGETS)
    assert {r.benchmark: r.verdict for r in results} == {
        "test_l1_hit": "pass",
        "test_l2_hit": "pass",
        "test_l3_hit_sqlite": "pass",
    }
    assert judge({"benchmarks": healthy()}, budgets_path=BUDGETS, out=io.StringIO()) == 0


def test_a_slow_tail_breaks_the_l1_budget_even_with_a_fast_median() -> None:
    # 98 fast reads and two of 7 ms: the median is fine, the p99 is over 5 ms
    benches = healthy()
    benches[0] = bench("test_l1_hit", [0.01] * 98 + [7.0, 7.0], tier="L1")
    results = {r.benchmark: r for r in judge_tier_budgets({"benchmarks": benches}, BUDGETS)}
    assert results["test_l1_hit"].verdict == "fail"
    assert results["test_l1_hit"].measured_ms == pytest.approx(7.0)
    out = io.StringIO()
    assert judge({"benchmarks": benches}, budgets_path=BUDGETS, out=out) == 1
    assert "FAIL: test_l1_hit p99 7.00 ms is over the budget tier.l1.p99" in out.getvalue()


def test_each_l3_backend_is_judged_on_its_own() -> None:
    benches = [*healthy(), bench("test_l3_hit_postgres", [150.0] * 10, tier="L3")]
    results = {r.benchmark: r.verdict for r in judge_tier_budgets({"benchmarks": benches}, BUDGETS)}
    assert results["test_l3_hit_sqlite"] == "pass"
    assert results["test_l3_hit_postgres"] == "fail"


def test_a_budget_without_its_benchmark_fails_only_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    benches = [b for b in healthy() if b["name"] != "test_l2_hit"]
    monkeypatch.setenv("CI", "false")
    assert judge({"benchmarks": benches}, budgets_path=BUDGETS, out=io.StringIO()) == 0
    monkeypatch.setenv("CI", "true")
    assert judge({"benchmarks": benches}, budgets_path=BUDGETS, out=io.StringIO()) == 1


def test_a_failed_pytest_run_fails_the_gate() -> None:
    assert judge({"benchmarks": healthy()}, budgets_path=BUDGETS, pytest_code=1, out=io.StringIO())


def test_anchor_ratio_is_the_ratio_of_medians() -> None:
    assert anchor_ratios({"benchmarks": healthy()}) == {"test_l1_hit": pytest.approx(5.0)}


@pytest.mark.slow
def test_bench_quick_runs_every_benchmark_and_writes_the_json(tmp_path: Path) -> None:
    env = {**os.environ, "CI": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "velro_perf.bench", "--quick", "--out", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    latest = tmp_path / "runs" / "bench" / "latest.json"
    data = json.loads(latest.read_text())
    names = {b["name"] for b in data["benchmarks"]}
    assert {"test_singleton_warm", "test_executor_round_trip", "test_jwt_verify"} <= names
    assert all(b["stats"]["data"] for b in data["benchmarks"])  # rounds saved for the gate
    assert "x anchor" in proc.stdout
    assert "tier.l1.p99" in proc.stdout


def test_velro_perf_bench_passes_its_options_through(tmp_path: Path) -> None:
    """`velro-perf bench --quick --compare MISSING` reaches bench.main, which names the file."""
    missing = tmp_path / "no-such-baseline.json"
    proc = subprocess.run(
        [sys.executable, "-m", "velro_perf", "bench", "--quick", "--compare", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2
    assert "no-such-baseline.json" in proc.stderr
    assert "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr

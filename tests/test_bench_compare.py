"""`velro-perf bench --compare`: a regression needs a significant test and a minimum effect."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from velro_perf.bench.cli import judge
from velro_perf.bench.compare import compare_benchmarks

BUDGETS = Path(__file__).resolve().parents[1] / "fixtures" / "budgets.toml"


def bench_json(**rounds: np.ndarray) -> dict[str, Any]:
    """A pytest-benchmark JSON holding one benchmark per keyword, with these rounds (s)."""
    benches = []
    for name, data in rounds.items():
        benches.append(
            {
                "name": name,
                "extra_info": {},
                "stats": {
                    "median": float(np.median(data)),
                    "rounds": len(data),
                    "data": [float(x) for x in data],
                },
            }
        )
    return {"benchmarks": benches}


def lognormal(seed: int, median_s: float, n: int, sigma: float = 0.25) -> np.ndarray:
    # round times are right-skewed: a lognormal is closer to them than a normal
    return np.random.default_rng(seed).lognormal(np.log(median_s), sigma, n)


def verdict_of(base: np.ndarray, cur: np.ndarray) -> tuple[str, float | None]:
    (change,) = compare_benchmarks(bench_json(test_x=base), bench_json(test_x=cur))
    return change.verdict, change.p_value


def test_a_thirty_percent_slowdown_is_a_regression() -> None:
    verdict, p = verdict_of(lognormal(1, 100e-6, 200), lognormal(2, 130e-6, 200))
    assert verdict == "regression"
    assert p is not None
    assert p < 0.01


def test_two_runs_of_the_same_distribution_are_unchanged() -> None:
    for seed in range(10):
        base, cur = lognormal(100 + seed, 100e-6, 200), lognormal(200 + seed, 100e-6, 200)
        assert verdict_of(base, cur)[0] == "unchanged"


def test_a_significant_but_tiny_shift_is_not_a_regression() -> None:
    # 3 % slower on 20,000 rounds: the test is sure of it, the minimum effect (10 %) is not met
    base, cur = lognormal(3, 100e-6, 20_000), lognormal(4, 103e-6, 20_000)
    verdict, p = verdict_of(base, cur)
    assert p is not None
    assert p < 0.01
    assert verdict == "unchanged"


def test_a_large_but_noisy_shift_on_few_rounds_is_not_a_regression() -> None:
    # 15 % slower in the medians, but three rounds each cannot show it at p < 0.01
    base = np.array([100e-6, 180e-6, 60e-6])
    cur = np.array([115e-6, 70e-6, 190e-6])
    assert verdict_of(base, cur)[0] == "unchanged"


def test_a_big_speedup_is_reported_as_faster() -> None:
    assert verdict_of(lognormal(5, 100e-6, 200), lognormal(6, 60e-6, 200))[0] == "faster"


def test_new_and_vanished_benchmarks_are_named_not_judged() -> None:
    changes = compare_benchmarks(
        bench_json(test_old=lognormal(7, 1e-3, 20)), bench_json(test_new=lognormal(8, 1e-3, 20))
    )
    assert {(c.name, c.verdict) for c in changes} == {("test_new", "new"), ("test_old", "gone")}


def test_the_gate_exits_1_on_a_regression_and_prints_the_change() -> None:
    base = bench_json(test_l1_hit=lognormal(9, 50e-6, 300))
    cur = bench_json(test_l1_hit=lognormal(10, 80e-6, 300))
    out = io.StringIO()
    assert judge(cur, budgets_path=BUDGETS, baseline=base, out=out) == 1
    text = out.getvalue()
    assert "FAIL: test_l1_hit regressed" in text
    assert "regression" in text


def test_the_gate_exits_0_when_nothing_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    # about the comparison alone: outside CI, the tier budgets this JSON has no benchmark
    # for are warnings (under CI=true they fail: test_bench_gate.py)
    monkeypatch.setenv("CI", "false")
    base = bench_json(test_l1_hit=lognormal(11, 50e-6, 300))
    cur = bench_json(test_l1_hit=lognormal(12, 50e-6, 300))
    assert judge(cur, budgets_path=BUDGETS, baseline=base, out=io.StringIO()) == 0


def test_each_change_shows_how_its_anchor_moved() -> None:
    base = bench_json(
        test_l1_hit=lognormal(13, 1e-6, 200), test_l1_anchor_dict=lognormal(14, 4e-8, 200)
    )
    cur = bench_json(
        test_l1_hit=lognormal(15, 1.5e-6, 200), test_l1_anchor_dict=lognormal(16, 6e-8, 200)
    )
    cur["benchmarks"][0]["extra_info"] = {"anchor": "test_l1_anchor_dict"}
    changes = {c.name: c for c in compare_benchmarks(base, cur)}
    hit = changes["test_l1_hit"]
    assert hit.verdict == "regression"
    assert hit.anchor == "test_l1_anchor_dict"
    assert hit.anchor_ratio == pytest.approx(1.5, rel=0.1)  # the anchor slowed down as much
    assert changes["test_l1_anchor_dict"].anchor is None

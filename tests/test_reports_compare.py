"""Comparing two runs: a real shift regresses, noise and negligible shifts do not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from velro_perf.reports.compare import ALPHA, compare_runs, render_comparison
from velro_perf.reports.synthetic import EndpointSpec, write_synthetic_run

ONE = {"GET /api/v1/auth/me": EndpointSpec("authentication", 1.0, 20.0, 0.5)}

RunFactory = Callable[..., Path]


@pytest.fixture
def make_run(tmp_path: Path) -> RunFactory:
    """A synthetic run with one endpoint (median 20 ms, log-normal sigma 0.5)."""

    def make(name: str, **kwargs: object) -> Path:
        kwargs.setdefault("endpoints", ONE)
        kwargs.setdefault("hit_rate", None)
        kwargs.setdefault("setup_requests", 0)
        return write_synthetic_run(tmp_path / name, **kwargs)

    return make


def test_a_real_shift_is_a_regression(make_run: RunFactory, tmp_path: Path) -> None:
    base = make_run("base", n=5000, seed=1)
    slower = make_run("slower", n=5000, seed=2, latency_scale=1.5)
    cmp = compare_runs(base, slower)
    (row,) = cmp.rows
    assert row.verdict == "regressed"
    assert cmp.regressed is True
    assert row.p_value is not None
    assert row.p_value < ALPHA
    p50 = row.quantiles["p50"]
    assert p50.relative == pytest.approx(0.5, abs=0.1)
    assert p50.delta_low is not None
    assert p50.delta_low > 0  # the change's interval excludes zero
    assert compare_runs(slower, base).rows[0].verdict == "improved"

    html = render_comparison(cmp, tmp_path / "compare.html").read_text(encoding="utf-8")
    assert "regressed" in html
    assert "GET /api/v1/auth/me" in html
    assert "https://" not in html
    assert "http://" not in html


def test_the_same_distribution_is_unchanged(make_run: RunFactory) -> None:
    cmp = compare_runs(make_run("a", n=5000, seed=1), make_run("b", n=5000, seed=2))
    assert [r.verdict for r in cmp.rows] == ["unchanged"]
    assert cmp.regressed is False
    assert cmp.warnings == []


def test_a_tiny_shift_with_huge_n_is_significant_but_unchanged(make_run: RunFactory) -> None:
    # 3 % slower on 150,000 requests each: Mann-Whitney finds it, but it is under 10 % / 1 ms
    base = make_run("big-a", n=150_000, seed=1, duration_s=60.0)
    cur = make_run("big-b", n=150_000, seed=2, duration_s=60.0, latency_scale=1.03)
    (row,) = compare_runs(base, cur).rows
    assert row.p_value is not None
    assert row.p_value < ALPHA
    assert row.verdict == "unchanged"
    assert "significant" in row.reason


def test_different_configurations_are_warned_about(make_run: RunFactory) -> None:
    cmp = compare_runs(make_run("a", n=500), make_run("b", n=500, config_hash="other"))
    assert any("config_hash" in w for w in cmp.warnings)


def test_an_endpoint_in_one_run_only_is_not_compared(make_run: RunFactory) -> None:
    two = {**ONE, "POST /api/v1/auth/login": EndpointSpec("login", 0.5, 40.0)}
    cmp = compare_runs(make_run("a", n=2000), make_run("b", n=2000, endpoints=two))
    verdicts = {r.endpoint: r.verdict for r in cmp.rows}
    assert verdicts["POST /api/v1/auth/login"] == "not_compared"

"""The HTML report: every PRD row, self-contained, escaped, with story, benchmarks and trend."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from reports.analysis import summarize, write_summary
from reports.budgets import load_budgets
from reports.history import append_history
from reports.render import render_report
from reports.synthetic import write_synthetic_run

PROJECT = Path(__file__).resolve().parents[1]
BUDGETS = load_budgets(PROJECT / "fixtures" / "budgets.toml")
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)

RunFactory = Callable[..., Path]


@pytest.fixture
def make_run(tmp_path: Path) -> RunFactory:
    """A synthetic run directory under tmp_path/runs (see reports.synthetic)."""

    def make(name: str = "20261125-120000-steady-fixed", **kwargs: object) -> Path:
        kwargs.setdefault("n", 3000)
        return write_synthetic_run(tmp_path / "runs" / name, **kwargs)

    return make


def test_the_report_has_every_prd_row_and_nothing_from_the_network(make_run: RunFactory) -> None:
    run = make_run()
    html = render_report(run).read_text(encoding="utf-8")
    for budget in BUDGETS:
        assert f'data-budget="{budget.id}"' in html
    for requirement in {b.requirement for b in BUDGETS}:
        assert f'data-requirement="{requirement}"' in html
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert "http://" not in html.replace("http://127.0.0.1", "")  # only the target's own URL
    images = re.findall(r'<img src="([^"]*)"', html)
    assert len(images) >= 6
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert "Content-Security-Policy" in html
    assert "@media print" in html


def test_the_verdict_is_at_the_top_and_an_interrupted_run_says_so(make_run: RunFactory) -> None:
    run = make_run(complete=False, interrupted="SIGINT", latency_scale=40.0)
    html = render_report(run).read_text(encoding="utf-8")
    top = html[: html.index('id="prd"')]
    assert 'class="verdict v-fail"' in top
    assert "This run is incomplete (interrupted: SIGINT)" in top


def test_a_saturated_generator_is_flagged_as_invalid_at_the_top(make_run: RunFactory) -> None:
    html = render_report(make_run(cpu_percent=97.0)).read_text(encoding="utf-8")
    top = html[: html.index('id="prd"')]
    assert 'class="verdict v-invalid"' in top
    assert "The load generator was saturated" in top


def test_names_from_the_run_are_escaped(make_run: RunFactory) -> None:
    run = make_run()
    samples = pd.read_csv(run / "samples.csv")
    samples.loc[samples.index[-50:], "endpoint"] = "GET /<script>alert(1)</script>"
    samples.to_csv(run / "samples.csv", index=False)
    html = render_report(run).read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_run_without_metrics_or_history_still_renders(make_run: RunFactory) -> None:
    run = make_run(hit_rate=None)
    (run / "locust_stats_history.csv").unlink()
    (run / "locust_stats.csv").unlink()
    html = render_report(run).read_text(encoding="utf-8")
    assert "No cache hit rate" in html
    assert 'data-budget="cache.hit_rate"' in html


def test_an_existing_summary_is_what_the_report_shows(make_run: RunFactory) -> None:
    run = make_run()
    summary = summarize(run, BUDGETS)
    summary["budgets"][0]["sentence"] = "Re-judged by the gate: a sentence of its own."
    write_summary(run, summary)
    assert "a sentence of its own" in render_report(run).read_text(encoding="utf-8")


def test_the_story_sets_measured_beside_claimed(make_run: RunFactory) -> None:
    make_run(
        "20261125-110000-steady-degraded",
        profile="degraded",
        latency_scale=50.0,
        hit_rate=None,
        start=1_763_990_000.0,
    )
    run = make_run()
    html = render_report(run).read_text(encoding="utf-8")
    story = html[html.index('id="story"') :]
    assert "20261125-110000-steady-degraded" in story
    assert "claimed in the deployment report, never measured" in story
    assert "measured by this suite" in story
    assert "15,000-30,000ms" in story  # the report's claimed "before" for authentication
    assert 'id="story-table"' in story


def test_no_story_without_a_degraded_run_of_the_same_shape(make_run: RunFactory) -> None:
    make_run("20261125-110000-ramp-10k-degraded", profile="degraded", shape="ramp-10k")
    html = render_report(make_run()).read_text(encoding="utf-8")
    assert 'id="story-table"' not in html
    assert "no complete degraded run of shape steady" in html


def test_microbenchmarks_and_their_anchor_ratios_are_shown(
    make_run: RunFactory, tmp_path: Path
) -> None:
    run = make_run()
    bench = {
        "machine_info": {"node": "test"},
        "datetime": "2026-11-25T00:00:00",
        "benchmarks": [
            {
                "name": "test_dict_get",
                "stats": {"median": 1e-7, "max": 3e-7, "ops": 1e7, "rounds": 100},
                "extra_info": {},
            },
            {
                "name": "test_l1_hit",
                "stats": {
                    "median": 2e-6,
                    "max": 9e-6,
                    "ops": 5e5,
                    "rounds": 1000,
                    "data": [2e-6] * 990 + [8e-6] * 10,
                },
                "extra_info": {"anchor": "test_dict_get"},
            },
            {
                "name": "test_l2_hit",
                "stats": {"median": 0.03, "max": 0.05, "ops": 30, "rounds": 10},
                "extra_info": {},
            },
        ],
    }
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(bench))
    html = render_report(run, bench_json=path).read_text(encoding="utf-8")
    section = html[html.index('id="bench"') :]
    assert "test_l1_hit" in section
    assert "20.00 × test_dict_get" in section  # 2 µs / 0.1 µs
    # 1,000 saved rounds bound the p99 from above (100 would leave it unbounded: inconclusive)
    assert "test_l1_hit p99 0.002 ms against &lt; 5 ms: pass." in section
    assert "test_l2_hit p99 50.0 ms against &lt; 20 ms: fail." in section  # median 30 ms >= 20
    assert "tier.l3.p99" not in section or "no benchmark" in section
    prd = html[html.index('data-budget="tier.l1.p99"') : html.index('data-budget="tier.l2.p99"')]
    assert "microbenchmark test_l1_hit: p99 0.002 ms" in prd


def test_the_trend_follows_runs_of_the_same_configuration(make_run: RunFactory) -> None:
    runs = [
        make_run(f"20261125-1{i}0000-steady-fixed", seed=i, start=1_764_000_000.0 + i * 600)
        for i in range(3)
    ]
    for r in runs:
        append_history(r.parent, summarize(r, BUDGETS))
    html = render_report(runs[-1]).read_text(encoding="utf-8")
    trend = html[html.index('id="trend"') :]
    assert "the last 3 runs with config_hash" in trend

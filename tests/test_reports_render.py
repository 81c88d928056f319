"""The HTML report: every PRD row, self-contained, escaped, with story, benchmarks and trend."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from velro_perf.reports.analysis import summarize, write_summary
from velro_perf.reports.budgets import load_budgets
from velro_perf.reports.history import append_history
from velro_perf.reports.render import render_report
from velro_perf.reports.samplefiles import SCHEMA, sample_files
from velro_perf.reports.synthetic import write_synthetic_run

PROJECT = Path(__file__).resolve().parents[1]
BUDGETS = load_budgets(PROJECT / "fixtures" / "budgets.toml")
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
EVIL = "GET /<script>alert(1)</script>"

RunFactory = Callable[..., Path]

BENCH = {
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
                # 1,000 saved rounds bound the p99 from above (100 would leave it unbounded)
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


def _factory(root: Path) -> RunFactory:
    def make(name: str = "20261125-120000-steady-fixed", **kwargs: object) -> Path:
        kwargs.setdefault("n", 2000)
        return write_synthetic_run(root / "runs" / name, **kwargs)

    return make


@pytest.fixture
def make_run(tmp_path: Path) -> RunFactory:
    """A synthetic run directory under tmp_path/runs (see reports.synthetic)."""
    return _factory(tmp_path)


@pytest.fixture(scope="module")
def rich_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One fixed run with everything beside it: a degraded run of its shape, two earlier runs
    in runs/history.csv, runs/bench/latest.json, and an endpoint name with markup in it."""
    make = _factory(tmp_path_factory.mktemp("rich"))
    make(
        "20261125-090000-steady-degraded",
        profile="degraded",
        latency_scale=50.0,
        hit_rate=None,
        start=1_763_990_000.0,
    )
    runs = [
        make(f"20261125-1{i}0000-steady-fixed", seed=i, start=1_764_000_000.0 + i * 600)
        for i in range(3)
    ]
    current = runs[-1]
    (segment,) = sample_files(current)
    samples = pq.read_table(segment).to_pandas()
    samples.loc[samples.index[-50:], "endpoint"] = EVIL
    pq.write_table(pa.Table.from_pandas(samples, schema=SCHEMA, preserve_index=False), segment)
    for r in runs:
        append_history(r.parent, summarize(r, BUDGETS))
    (current.parent / "bench").mkdir()
    (current.parent / "bench" / "latest.json").write_text(json.dumps(BENCH))
    return render_report(current).read_text(encoding="utf-8")


def section(html: str, anchor: str) -> str:
    return html[html.index(f'id="{anchor}"') :]


def test_the_report_has_every_prd_row_and_nothing_from_the_network(rich_report: str) -> None:
    html = rich_report
    for budget in BUDGETS:
        assert f'data-budget="{budget.id}"' in html
    for requirement in {b.requirement for b in BUDGETS}:
        assert f'data-requirement="{requirement}"' in html
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert "http://" not in html
    assert "https://" not in html
    images = re.findall(r'<img src="([^"]*)"', html)
    assert len(images) >= 8
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert "Content-Security-Policy" in html
    assert "@media print" in html


def test_names_from_the_run_are_escaped(rich_report: str) -> None:
    assert "<script>alert(1)" not in rich_report
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rich_report


def test_the_story_sets_measured_beside_claimed(rich_report: str) -> None:
    story = section(rich_report, "story")
    assert "20261125-090000-steady-degraded" in story
    assert "claimed in the deployment report, never measured" in story
    assert "measured by this suite" in story
    assert "15,000-30,000ms" in story  # the deployment report's "before" for authentication
    assert 'id="story-table"' in story


def test_the_trend_follows_runs_of_the_same_configuration(rich_report: str) -> None:
    assert "the last 3 runs with config_hash" in section(rich_report, "trend")


def test_microbenchmarks_and_their_anchor_ratios_are_shown(rich_report: str) -> None:
    bench = section(rich_report, "bench")
    assert "test_l1_hit" in bench
    assert "20.00 × test_dict_get" in bench  # 2 µs / 0.1 µs
    assert "test_l1_hit p99 0.002 ms against &lt; 5 ms: pass." in bench
    assert "test_l2_hit p99 50.0 ms against &lt; 20 ms: fail." in bench  # median 30 ms >= 20
    prd = rich_report[
        rich_report.index('data-budget="tier.l1.p99"') : rich_report.index(
            'data-budget="tier.l2.p99"'
        )
    ]
    assert "microbenchmark test_l1_hit: p99 0.002 ms" in prd


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


def test_a_bare_run_renders_without_story_metrics_or_history(
    make_run: RunFactory, tmp_path: Path
) -> None:
    make_run("20261125-110000-ramp-10k-degraded", profile="degraded", shape="ramp-10k", n=500)
    run = make_run(hit_rate=None)
    (run / "locust_stats_history.csv").unlink()
    (run / "locust_stats.csv").unlink()
    out = render_report(run, out=tmp_path / "elsewhere.html")
    html = out.read_text(encoding="utf-8")
    assert not (run / "report.html").exists()
    assert "No cache hit rate" in html
    assert 'data-budget="cache.hit_rate"' in html
    assert 'id="story-table"' not in html
    assert "no complete degraded run of shape steady" in html
    assert 'id="bench"' not in html


def test_an_existing_summary_is_what_the_report_shows(make_run: RunFactory) -> None:
    run = make_run()
    summary = summarize(run, BUDGETS)
    summary["budgets"][0]["sentence"] = "Re-judged by the gate: a sentence of its own."
    write_summary(run, summary)
    assert "a sentence of its own" in render_report(run).read_text(encoding="utf-8")

"""The samples on real runs: a runner killed with SIGKILL leaves a run `velro-perf report`
reads, and the smoke shape over 2 processes in histogram mode gives the exact run's
percentiles within the histograms' 0.1 %, on the very same requests (`--samples both`)."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import cli_env, run_cli, shape_toml, short_smoke, velro_perf_argv
from velro_perf.reports.histograms import RESOLUTION
from velro_perf.reports.samplefiles import sample_files
from velro_perf.reports.samples import SampleStore

pytestmark = pytest.mark.slow

SHAPE = shape_toml(
    "killed", warmup_s=1, wait_s=(0.1, 0.3), seed=(6, 2, 6), duration_s=60, users=6, spawn_rate=6
)


def test_a_runner_killed_mid_run_leaves_samples_the_report_reads(tmp_path: Path) -> None:
    shapes = tmp_path / "shapes.toml"
    shapes.write_text(SHAPE)
    with subprocess.Popen(
        [*velro_perf_argv(), "run", "--shape", "killed", "--shapes", str(shapes), "--no-redis"],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as runner:
        deadline = time.monotonic() + 90
        run: Path | None = None
        while time.monotonic() < deadline:
            found = list((tmp_path / "runs").glob("*-killed-fixed"))
            if found and len(sample_files(found[0])) >= 3:  # three flushes: ~6 s of load
                run = found[0]
                break
            time.sleep(0.5)
        assert run is not None, "the run wrote no samples"
        before = SampleStore(run).totals("samples").n
        # the runner and everything it started, at once, with no chance to flush or clean up
        tree = [runner.pid, *(p.pid for p in psutil.Process(runner.pid).children(recursive=True))]
        for pid in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).send_signal(signal.SIGKILL)
        runner.wait(30)
    store = SampleStore(run)
    assert store.totals("samples").n >= before > 0
    done = run_cli("report", run, "--out", tmp_path / "report.html", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "<!doctype html" in (tmp_path / "report.html").read_text().lower()[:200]
    gate = run_cli("gate", run, cwd=tmp_path, timeout=120)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] is False
    assert summary["requests"] > 0, gate.stdout + gate.stderr


def test_histogram_mode_on_two_processes_is_within_its_bound_of_exact(tmp_path: Path) -> None:
    done = run_cli(
        "run", "--shape", "smoke", "--shapes", short_smoke(tmp_path), "--processes", "2",
        "--samples", "both", "--no-redis", cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    (run,) = (tmp_path / "runs").glob("*-smoke-fixed")
    assert json.loads((run / "config.json").read_text())["samples_mode"] == "both"
    exact, merged = SampleStore(run), SampleStore(run, prefer="histogram")
    assert (exact.mode, merged.mode) == ("exact", "histogram")
    workers = exact.con.execute(
        "SELECT count(DISTINCT worker) FROM samples WHERE worker <> 'master'"
    ).fetchone()
    assert workers == (2,)  # two Locust workers shipped to the master
    for store in (exact, merged):
        store.judge_from(0.0)
    qs = (50.0, 95.0, 99.0)
    exact_rows = {e.endpoint: e for e in exact.endpoint_stats(qs, "requests")}
    merged_rows = {e.endpoint: e for e in merged.endpoint_stats(qs, "requests")}
    assert set(exact_rows) == set(merged_rows)
    for endpoint, e in exact_rows.items():
        m = merged_rows[endpoint]
        assert m.n == e.n, endpoint
        for q, want, got in zip(qs, e.quantiles, m.quantiles, strict=True):
            assert abs(got - want) <= RESOLUTION * want, (endpoint, q, want, got)
    # the run as histogram mode alone would leave it: judged, rendered, saying so
    exact_summary = json.loads((run / "summary.json").read_text())
    shutil.move(run / "samples", tmp_path / "rows")
    gate = run_cli("gate", run, cwd=tmp_path, timeout=120)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["samples_mode"] == "histogram", gate.stdout + gate.stderr
    # judged from whole seconds (the end of warm-up falls on one): about the same requests
    for b, x in zip(summary["budgets"], exact_summary["budgets"], strict=True):
        if b["kind"] == "latency" and x["samples"]:
            assert abs(b["samples"] - x["samples"]) <= 0.05 * x["samples"], b["id"]
    report = run_cli("report", run, cwd=tmp_path, timeout=120)
    assert report.returncode == 0, report.stderr
    assert "histogram mode" in (run / "report.html").read_text()

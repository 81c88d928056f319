"""A run whose generator loses a worker or stalls is invalid and says why; a short stall is
shown and its requests left out: the real runner, the real reference service, Locust's master
with two workers, and one worker stopped (SIGSTOP) mid-run, then continued."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from tests.helpers import shape_toml
from velro_perf.reports.samples import SampleStore

ROOT = Path(__file__).resolve().parent.parent
SHAPE = shape_toml(
    "lost", warmup_s=2, wait_s=(0.2, 0.5), seed=(10, 2, 10), duration_s=24, users=10, spawn_rate=10
) + shape_toml(
    "stalled",
    warmup_s=4,
    wait_s=(0.2, 0.5),
    seed=(10, 2, 10),
    duration_s=30,
    users=10,
    spawn_rate=10,
)

pytestmark = pytest.mark.slow


def _workers(runner: psutil.Process) -> list[psutil.Process]:
    """Locust's forked workers: processes of the run's tree whose parent is locust too."""
    found = []
    for proc in runner.children(recursive=True):
        try:
            parent = proc.parent()
            if parent is not None and "locust" in " ".join(parent.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _run_stopping_a_worker(
    tmp_path: Path,
    shape: str,
    stop_s: float,
    after_s: float,
    *extra: str,
    env: dict[str, str] | None = None,
) -> tuple[int, str, Path, float]:
    """Run `shape` with two workers, stop one `after_s` after the first requests for `stop_s`;
    (exit code, output, run folder, epoch time of the stop). `env` adds to the environment."""
    shapes = tmp_path / "shapes.toml"
    shapes.write_text(SHAPE, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        **(env or {}),
    }
    argv = [
        str(Path(sys.executable).parent / "velro-perf"), "run", "--shape", shape,
        "--shapes", str(shapes), "--no-redis", "--processes", "2", *extra,
    ]  # fmt: skip
    with subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as runner:
        assert runner.stdout is not None
        deadline = time.monotonic() + 90
        for line in runner.stdout:
            if "requests" in line and "requests 0 " not in line:
                break
            assert time.monotonic() < deadline, "the run never made requests"
        time.sleep(after_s)
        workers = _workers(psutil.Process(runner.pid))
        assert len(workers) == 2, workers
        stopped_at = time.time()
        workers[0].send_signal(signal.SIGSTOP)
        time.sleep(stop_s)
        workers[0].send_signal(signal.SIGCONT)
        output = line + runner.stdout.read()
        code = runner.wait(120)
    (run,) = (tmp_path / "runs").glob(f"*-{shape}-fixed")
    return code, output, run, stopped_at


def test_a_worker_stopped_mid_run_makes_the_run_invalid_with_its_time(tmp_path: Path) -> None:
    # tolerate 2 missed heartbeats, so that the test needs only a few seconds of stop; in
    # them the master marks it missing and rebalances its users
    code, output, run, _ = _run_stopping_a_worker(
        tmp_path, "lost", 6.0, 0.0, env={"VELRO_PERF_HEARTBEAT_LIVENESS": "2"}
    )
    assert code == 3, output
    summary = json.loads((run / "summary.json").read_text())
    assert summary["verdict"] == "invalid"
    reasons = " | ".join(summary["invalid_reasons"])
    assert "went missing at" in reasons, reasons
    assert "UTC (+" in reasons  # when, as a time of day and seconds into the run
    health = json.loads((run / "generator_health.json").read_text())
    assert health["heartbeat_liveness"] == 2
    assert any(event["kind"] == "worker_missing" for event in health["events"])
    assert "went missing" in (run / "report.html").read_text()
    assert "invalid: Locust worker" in output


def test_a_worker_stalled_3_s_makes_the_run_invalid_naming_it_when_and_how_long(
    tmp_path: Path,
) -> None:
    # the open model: the requests due while the worker was stopped are timed from their
    # slots, so they were in flight across its stall
    code, output, run, stopped_at = _run_stopping_a_worker(
        tmp_path, "stalled", 3.0, 2.0, "--open-rate", "30"
    )
    assert code == 3, output
    summary = json.loads((run / "summary.json").read_text())
    (stall,) = [s for s in summary["generator"]["stalls"]["stalls"] if s["length_s"] > 1.0]
    assert abs(stall["start"] - stopped_at) < 0.5, (stall, stopped_at)
    assert 2.9 < stall["length_s"] < 3.6, stall
    samples = SampleStore(run).frame(("worker",))
    assert stall["worker"] in set(samples["worker"])  # a worker's client id, as in the samples
    reasons = " | ".join(summary["invalid_reasons"])
    when = datetime.fromtimestamp(stall["start"], UTC).strftime("%H:%M:%S")
    assert f"Locust process {stall['worker']} stalled at {when} UTC (+" in reasons, reasons
    assert f"for {stall['length_s']:.2f} s" in reasons, reasons
    assert summary["generator"]["stalls"]["excluded"] > 0  # its requests in flight, left out
    assert "invalid: Locust process" in output


def test_a_worker_stalled_under_the_bound_leaves_a_valid_run_whose_report_shows_it(
    tmp_path: Path,
) -> None:
    code, output, run, stopped_at = _run_stopping_a_worker(tmp_path, "stalled", 0.25, 2.0)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["verdict"] != "invalid", summary["invalid_reasons"]
    assert code in (0, 1), output
    stalls = summary["generator"]["stalls"]
    (stall,) = [s for s in stalls["stalls"] if abs(s["start"] - stopped_at) < 0.5]
    assert 0.2 < stall["length_s"] < 1.0, stall
    assert stalls["shares"][stall["worker"]] <= stalls["max_share"]
    report = (run / "report.html").read_text()
    assert "Generator stalls beside the target" in report  # the chart on the time axis
    assert f"<code>{stall['worker']}</code>" in report  # and the stall's row

"""A run whose generator loses a worker is invalid and says why: the real runner, the real
reference service, Locust's master with two workers, and one worker stopped (SIGSTOP) for
longer than the heartbeat tolerance mid-run, then continued."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHAPE = """
[shapes.lost]
warmup_s = 2
wait_s = [0.2, 0.5]
seed_users = 10
seed_teams = 2
seed_projects = 10
stages = [ { duration_s = 24, users = 10, spawn_rate = 10 } ]
"""

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


def test_a_worker_stopped_mid_run_makes_the_run_invalid_with_its_time(tmp_path: Path) -> None:
    shapes = tmp_path / "shapes.toml"
    shapes.write_text(SHAPE, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        # tolerate 2 missed heartbeats, so that the test needs only a few seconds of stop
        "VELRO_PERF_HEARTBEAT_LIVENESS": "2",
    }
    argv = [
        str(Path(sys.executable).parent / "velro-perf"), "run", "--shape", "lost",
        "--shapes", str(shapes), "--no-redis", "--processes", "2",
    ]  # fmt: skip
    with subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as runner:
        assert runner.stdout is not None
        deadline = time.monotonic() + 90
        for line in runner.stdout:  # progress lines come once the users run
            if "requests" in line and "requests 0 " not in line:
                break
            assert time.monotonic() < deadline, "the run never made requests"
        workers = _workers(psutil.Process(runner.pid))
        assert len(workers) == 2, workers
        stopped = workers[0]
        stopped.send_signal(signal.SIGSTOP)
        time.sleep(6)  # 2 missed beats mark it missing; the master rebalances its users
        stopped.send_signal(signal.SIGCONT)
        output = line + runner.stdout.read()
        code = runner.wait(120)
    assert code == 3, output
    (run,) = (tmp_path / "runs").glob("*-lost-fixed")
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

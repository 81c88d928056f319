"""Process cleanup: a stopped, interrupted or killed runner leaves no process behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import cli_env
from velro_perf.procs import spawn

ROOT = Path(__file__).resolve().parents[1]


# -- process cleanup -----------------------------------------------------------------------

# a tool that forks: two children in its group, one that leaves it with its own session
TREE = textwrap.dedent(
    """
    import subprocess, sys, time
    kids = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    kids.append(subprocess.Popen(["sleep", "60"], start_new_session=True))
    with open(sys.argv[1], "w") as fh:
        fh.write(" ".join(str(k.pid) for k in kids))
    time.sleep(60)
    """
)


def _wait_for_pids(path: Path) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return [int(p) for p in path.read_text().split()]
        time.sleep(0.05)
    raise AssertionError(f"the process tree never wrote {path}")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _assert_all_gone(pids: list[int], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    assert [p for p in pids if _alive(p)] == []


def test_stopping_a_process_group_leaves_no_process_behind(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    proc = spawn("tree", [sys.executable, "-c", TREE, str(pids_file)])
    children = _wait_for_pids(pids_file)
    proc.stop(grace_s=2.0)
    _assert_all_gone([proc.pid, *children])


# the runner's side: a process that spawns the tree, then is interrupted
RUNNER = textwrap.dedent(
    """
    import signal, sys, time
    from velro_perf.procs import spawn

    def stop(signum, frame):
        raise SystemExit(f"signal {signum}")

    # both, as velro-perf's runner does (runexec.py, _Signals): a process started in the
    # background of a non-interactive shell inherits SIGINT ignored
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    proc = spawn("tree", [sys.executable, "-c", sys.argv[1], sys.argv[2]])
    print(proc.pid, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_runner_leaves_no_process_behind(tmp_path: Path, sig: int) -> None:
    pids_file = tmp_path / "pids"
    env = cli_env()
    with subprocess.Popen(
        [sys.executable, "-c", RUNNER, TREE, str(pids_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as runner:
        try:
            assert runner.stdout is not None
            tool = int(runner.stdout.readline())
            children = _wait_for_pids(pids_file)
            runner.send_signal(sig)
            runner.wait(20)
            _assert_all_gone([tool, *children])
        finally:
            runner.kill()


def test_a_killed_runner_takes_its_children_down(tmp_path: Path) -> None:
    # SIGKILL gives the runner no chance to clean up: PR_SET_PDEATHSIG still ends its child
    script = (
        "import sys, time\nfrom velro_perf.procs import spawn\n"
        "p = spawn('sleeper', ['sleep', '60'])\nprint(p.pid, flush=True)\ntime.sleep(60)\n"
    )
    env = cli_env()
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    ) as runner:
        assert runner.stdout is not None
        child = int(runner.stdout.readline())
        runner.kill()
    _assert_all_gone([child])

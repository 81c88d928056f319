"""Child processes that never outlive the run.

Every tool the runner starts (velro serve, locust and their workers) runs in its own process
group, so one signal reaches the whole tree: uvicorn's and Locust's worker processes included.
Stopping is terminate, wait, then kill, for the group and for any descendant that left it.
On Linux each child also gets PR_SET_PDEATHSIG, so even a runner killed with SIGKILL takes its
direct children down with it. `stop_all` is the last line of defence, registered with atexit.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import psutil

__all__ = ["ManagedProcess", "spawn", "stop_all", "terminate"]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

_live: list[ManagedProcess] = []
_live_lock = threading.Lock()


def _load_prctl() -> object | None:
    # loaded once in the parent: the child, between fork and exec, must not import or allocate
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def _child_setup(nice: int = 0) -> None:
    """Runs in the child between fork and exec: own session, die with the parent, and the
    niceness asked for (inherited by every process the tool forks)."""
    # new session = new process group, so killpg reaches every process the tool forks, and a
    # Ctrl-C at the terminal reaches only the runner, which then stops the children in order
    os.setsid()
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)  # type: ignore[operator]
    if nice:
        os.nice(nice)


class ManagedProcess:
    """A child process group started by `spawn`; `stop()` ends all of it."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log: IO[bytes] | None) -> None:
        self.name = name
        self.popen = popen
        self.pid = popen.pid
        self._log = log

    def poll(self) -> int | None:
        return self.popen.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            return []

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self, grace_s: float = 10.0, first_signal: int = signal.SIGTERM) -> int | None:
        """Signal the group, wait `grace_s`, then SIGKILL what is left; returns the exit code."""
        stragglers = self.descendants()  # before they are reparented and lose their link
        if self.popen.poll() is None or stragglers:
            self.signal_group(first_signal)
            try:
                self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(5.0)
        # a descendant that moved to another group is not reached by killpg
        alive = [p for p in stragglers if _running(p)]
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        _, still = psutil.wait_procs(alive, timeout=min(grace_s, 3.0))
        for proc in still:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(still, timeout=3.0)
        # the group may hold processes that were not our descendants any more
        self.signal_group(signal.SIGKILL)
        with _live_lock:
            if self in _live:
                _live.remove(self)
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.popen.poll()


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    cwd: Path | None = None,
    nice: int = 0,
) -> ManagedProcess:
    """Start `argv` in a new process group, its output appended to `log_path` (or discarded),
    `nice` steps below the runner's CPU priority."""
    log: IO[bytes] | None = log_path.open("ab") if log_path is not None else None
    try:
        popen = subprocess.Popen(  # noqa: S603 -- argv is built by the runner, never a shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log if log is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            # setsid + PR_SET_PDEATHSIG need a pre-exec hook; it only makes two system calls
            preexec_fn=functools.partial(_child_setup, nice),
        )
    except OSError:
        if log is not None:
            log.close()
        raise
    proc = ManagedProcess(name, popen, log)
    with _live_lock:
        _live.append(proc)
    return proc


def terminate(popen: subprocess.Popen[Any], grace_s: float = 10.0) -> int:
    """SIGTERM one process (not its group), SIGKILL it when it has not exited ``grace_s``
    later; its exit code. For a server a benchmark or a test started on its own."""
    popen.terminate()
    try:
        return popen.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        popen.kill()
        return popen.wait()


def stop_all(grace_s: float = 5.0) -> None:
    """Stop every process `spawn` started that is still registered (newest first)."""
    with _live_lock:
        pending = list(reversed(_live))
    for proc in pending:
        proc.stop(grace_s)


atexit.register(stop_all)

"""The calibration target in a process of its own, on a free loopback port, healthy before use.

The project's own helpers do the work: `velro_perf.target.free_port` and `wait_healthy`, and
`velro_perf.procs.spawn` (own process group, dies with the runner).
"""

from __future__ import annotations

import sys
from pathlib import Path

from velro_perf.calibration.laws import Law
from velro_perf.procs import ManagedProcess, spawn
from velro_perf.target import free_port, wait_healthy

__all__ = ["Target"]

STARTUP_TIMEOUT_S = 30.0


class Target:
    """The calibration target serving `law`; `stop()` (or `with`) ends it."""

    def __init__(self, law: Law, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "velro_perf.calibration", "--serve", "--port", str(self.port)]
        self.proc: ManagedProcess = spawn("calibration target", [*argv, *law.argv()], log_path=log)
        try:
            wait_healthy(self.url, self.proc, STARTUP_TIMEOUT_S, log)
        except BaseException:
            self.stop()
            raise

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.proc.stop(grace_s=10.0)

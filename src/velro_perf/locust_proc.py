"""Locust in a subprocess: the command line the locustfile expects, in its own process group.

The locustfile's LoadTestShape drives the users and stops the run by itself; `--processes N`
uses Locust's own master and forked workers, which stay in the same process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from velro_perf.paths import locustfile, tool_command
from velro_perf.procs import ManagedProcess, spawn

__all__ = ["LocustOptions", "locust_argv", "start_locust", "stop_locust"]


@dataclass(frozen=True)
class LocustOptions:
    host: str
    shape: str
    run_dir: Path
    fixtures: Path | None = None
    open_rate: float | None = None
    processes: int = 1
    shapes_file: Path | None = None  # None: the locustfile's default, fixtures/shapes.toml
    api_file: Path | None = None  # None: the locustfile's default, targets/contract.toml
    workload_file: Path | None = None  # None: the shape's own workload, else workload.toml
    capacity_plan: Path | None = None  # velro-perf capacity: the level comes from this file
    samples: str = "exact"  # exact | histogram (scenarios.recorder)
    users_file: Path | None = None  # existing users to sign in as (scenarios/usersfile.py)
    seed: tuple[int, int, int] | None = None  # users, teams, projects through the API


def locust_argv(opts: LocustOptions) -> list[str]:
    argv = [
        *tool_command("locust", "locust"),
        "-f",
        str(locustfile()),
        "--headless",
        "--host",
        opts.host,
        "--csv",
        str(opts.run_dir / "locust"),
        # no --csv-full-history: the suite reads only the history's Aggregated rows (users,
        # rates), and a row per endpoint each second costs their percentiles every second
        # the periodic tables would only fill locust.log; progress comes from the history CSV
        "--only-summary",
        "--velro-shape",
        opts.shape,
        "--velro-out",
        str(opts.run_dir),
    ]
    if opts.shapes_file is not None:
        argv += ["--velro-shapes", str(opts.shapes_file.resolve())]
    if opts.api_file is not None:
        argv += ["--velro-api", str(opts.api_file.resolve())]
    if opts.workload_file is not None:
        argv += ["--velro-workload", str(opts.workload_file.resolve())]
    if opts.capacity_plan is not None:
        argv += ["--velro-capacity-plan", str(opts.capacity_plan.resolve())]
    if opts.fixtures is not None:
        argv += ["--velro-fixtures", str(opts.fixtures)]
    if opts.users_file is not None:
        argv += ["--velro-users-file", str(opts.users_file.resolve())]
    if opts.seed is not None:
        argv += ["--velro-seed", ",".join(str(n) for n in opts.seed)]
    if opts.open_rate is not None:
        argv += ["--velro-open-rate", f"{opts.open_rate:g}"]
    if opts.samples != "exact":
        argv += ["--velro-samples", opts.samples]
    if opts.processes != 1:
        argv += ["--processes", str(opts.processes)]
    return argv


def start_locust(opts: LocustOptions) -> ManagedProcess:
    # the locustfile imports velro_perf.scenarios from this environment, as this process does
    return spawn(
        "locust",
        locust_argv(opts),
        env=dict(os.environ),
        log_path=opts.run_dir / "locust.log",
        cwd=opts.run_dir,
    )


def stop_locust(proc: ManagedProcess, grace_s: float = 20.0) -> int | None:
    """Stop Locust the way Ctrl-C would, so it writes its CSVs and samples; then harder."""
    # SIGINT to the master alone, as Ctrl-C would: it quits its workers (which send their last
    # samples) and fires its quit hooks, where the recorder writes samples.csv. Not SIGTERM:
    # with a LoadTestShape in headless mode Locust (2.47) joins the shape greenlet before it
    # installs its SIGTERM handler, so SIGTERM kills it without writing anything; its
    # KeyboardInterrupt path is the graceful one. The whole group is killed only if this hangs.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)
    return proc.stop(grace_s=5.0)

"""What `velro-perf capacity` was asked for, checked before anything starts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from velro_perf.errors import UsageError
from velro_perf.paths import budgets_file as default_budgets_file
from velro_perf.paths import shapes_file as default_shapes_file

__all__ = ["DEFAULT_MAX_TIME_S", "CapacityOptions", "check"]

DEFAULT_MAX_TIME_S = 28 * 60.0  # the whole search, set-up and teardown included
DEFAULT_SHAPE = "capacity"


@dataclass(frozen=True)
class CapacityOptions:
    target: str | None = None
    api_file: Path | None = None
    shape: str = DEFAULT_SHAPE  # one step: its warm-up, its last stage's hold, users, spawn rate
    workload_file: Path | None = None
    fixtures: Path | None = None  # a --target's seed file; None: provisioned through its API
    target_pid: int | None = None  # a --target's root process on this machine (its CPU split)
    open_model: bool = False  # levels are requests a second instead of users
    start: float | None = None  # None: the shape's users (closed) or their rate (open)
    factor: float = 2.0
    ratio: float = 0.10
    max_level: float | None = None
    min_level: float = 1.0
    hold_s: float | None = None  # None: the shape's last stage
    warmup_s: float | None = None  # None: the shape's warm-up
    spawn_rate: float | None = None  # None: the shape's
    extensions: int = 2  # an inconclusive hold is lengthened this many times at most
    max_time_s: float = DEFAULT_MAX_TIME_S
    require: float | None = None
    out: Path = Path("runs")
    budgets_file: Path = field(default_factory=default_budgets_file)
    shapes_file: Path = field(default_factory=default_shapes_file)
    processes: int | None = None
    workers: int | None = None
    database: str | None = None
    use_redis: bool = True
    service_profile: str | None = None
    startup_timeout_s: float = 60.0


def check(opts: CapacityOptions) -> None:
    """UsageError naming the value and the fix, for what no search can use."""
    for name, value in (
        ("--start", opts.start),
        ("--max-level", opts.max_level),
        ("--require", opts.require),
        ("--hold", opts.hold_s),
        ("--spawn-rate", opts.spawn_rate),
    ):
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise UsageError(f"{name} {value:g} is invalid; give a number above 0")
    if opts.warmup_s is not None and (not math.isfinite(opts.warmup_s) or opts.warmup_s < 0):
        raise UsageError(f"--warmup {opts.warmup_s:g} is invalid; give 0 seconds or more")
    if not opts.factor > 1:
        raise UsageError(f"--factor {opts.factor:g} is invalid; give a ratio above 1, e.g. 2")
    if not 0 < opts.ratio < 1:
        raise UsageError(f"--ratio {opts.ratio:g} is invalid; give a fraction such as 0.1 (10 %)")
    if opts.hold_s is not None and opts.hold_s < 5:
        raise UsageError(f"--hold {opts.hold_s:g} is too short; give 5 seconds or more")
    if opts.max_time_s < 60:
        raise UsageError(f"--max-time {opts.max_time_s:g} is too short; give 60 seconds or more")
    if opts.extensions < 0:
        raise UsageError(f"--extensions {opts.extensions} is invalid; give 0 or more")
    if opts.target_pid is not None and (opts.target is None or opts.target_pid <= 0):
        raise UsageError(
            f"--target-pid {opts.target_pid} names a --target's process; give it with "
            "--target URL (the reference service's own is known)"
        )
    if opts.fixtures is not None and opts.target is None:
        raise UsageError(
            f"--fixtures {opts.fixtures} seeds a --target; the reference service seeds "
            "itself: drop --fixtures or give --target URL"
        )
    if opts.fixtures is not None and not opts.fixtures.is_file():
        raise UsageError(
            f"--fixtures {opts.fixtures} does not exist; give the JSON `velro seed --out` wrote"
        )
    if opts.start is not None and opts.max_level is not None and opts.start > opts.max_level:
        raise UsageError(
            f"the level range is empty: --start {opts.start:g} is above --max-level "
            f"{opts.max_level:g}; give a --start at or under --max-level"
        )
    if opts.max_level is not None and opts.max_level < opts.min_level:
        raise UsageError(
            f"the level range is empty: --max-level {opts.max_level:g} is under the lowest "
            f"level, {opts.min_level:g}; give a --max-level of {opts.min_level:g} or more"
        )

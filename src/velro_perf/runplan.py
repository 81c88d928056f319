"""`velro-perf run`, planning: what the run was asked for, checked, with the shape's defaults,
and config.json and meta.json as known before anything starts (docs/run-format.md)."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from velro_perf.errors import ConfigError, UsageError
from velro_perf.gate import load_budgets
from velro_perf.paths import api_file as default_api_file
from velro_perf.paths import budgets_file as default_budgets_file
from velro_perf.paths import fixtures_dir, project_root
from velro_perf.paths import shapes_file as default_shapes_file
from velro_perf.reports.budgets import Budgets
from velro_perf.reports.runfiles import RunConfig, RunMeta
from velro_perf.runmeta import git_state, machine, utc_iso, versions
from velro_perf.scenarios.apifile import load_api
from velro_perf.scenarios.apimodel import ApiFile
from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.usersfile import load_users_file
from velro_perf.shapes import ShapeInfo, load_shape
from velro_perf.target import check_port_free, redact_url, require_loopback

__all__ = [
    "RunOptions",
    "RunPlan",
    "check_users_file",
    "expected_rate",
    "initial_config",
    "initial_meta",
    "load_run_api",
    "plan_run",
    "resolve_shape",
    "samples_mode",
    "say",
    "validate",
    "with_shape_defaults",
]


@dataclass(frozen=True)
class RunOptions:
    """Everything `velro-perf run` was asked for."""

    shape: str
    target: str | None = None
    api_file: Path | None = None  # None: targets/contract.toml (CONTRACT.md)
    service_profile: str | None = None  # None: "fixed" for the reference service
    processes: int | None = None  # None: the shape's default, else 1
    out: Path = Path("runs")
    open_rate: float | None = None
    database: str | None = None  # None: "sqlite" for the reference service
    budgets_file: Path = field(default_factory=default_budgets_file)
    shapes_file: Path = field(default_factory=default_shapes_file)
    port: int | None = None
    workers: int | None = None  # None: the shape's default, else 1
    use_redis: bool = True
    startup_timeout_s: float = 60.0
    max_duration_s: float | None = None
    progress_every_s: float = 5.0
    # the workload file that replaces the shape's own (velro-perf capacity --workload)
    workload_file: Path | None = None
    # a seed file (`velro seed --out` format) for a --target; None: provisioned through its API
    fixtures: Path | None = None
    # velro-perf capacity: Locust holds the level this file names (scenarios/capacityplan.py)
    capacity_plan: Path | None = None
    # explicit sizes replace the shape file's (tests, or a shape file not written yet)
    warmup_s: float | None = None
    seed_users: int | None = None
    seed_teams: int | None = None
    seed_projects: int | None = None
    samples: str = "auto"  # exact | histogram | both | auto (samples_mode)
    # a CSV of existing users (email,password[,id]) the scenarios sign in as
    users_file: Path | None = None


@dataclass(frozen=True)
class RunPlan:
    """A run checked before anything starts: its options with the shape's defaults, the API
    file, the shape, the budgets, the target (None: the reference service) and the profile."""

    opts: RunOptions
    api: ApiFile
    shape: ShapeInfo
    budgets: Budgets
    target: str | None
    profile: str


def plan_run(opts: RunOptions) -> RunPlan:
    """Everything `velro-perf run` and `capacity` check and resolve before the run folder is
    made (a bad option or file is exit 2 here); the target's reachability is the caller's."""
    validate(opts)
    api = load_run_api(opts)
    shape = resolve_shape(opts)
    check_users_file(opts, shape)
    opts = with_shape_defaults(opts, shape)
    budgets = load_budgets(opts.budgets_file)
    target = require_loopback(opts.target) if opts.target else None
    profile = (opts.service_profile or "fixed") if target is None else "external"
    return RunPlan(opts, api, shape, budgets, target, profile)


def say(message: str) -> None:
    """One line of the runner's output, at once."""
    print(message, flush=True)


def check_users_file(opts: RunOptions, shape: ShapeInfo) -> None:
    """A users file that cannot serve the shape is exit 2 before anything starts."""
    if opts.users_file is None:
        return
    try:
        load_users_file(opts.users_file, shape.seed_users)
    except ScenarioConfigError as exc:
        raise ConfigError(f"{exc} (--users-file)") from None


def load_run_api(opts: RunOptions) -> ApiFile:
    """The run's API file, validated before anything starts (a bad one is exit 2)."""
    try:
        return load_api(opts.api_file or default_api_file())
    except ScenarioConfigError as exc:
        raise ConfigError(f"{exc} (--api)") from None


def validate(opts: RunOptions) -> None:
    """Refuse what the run must not do, before anything is created or started."""
    if opts.users_file is not None and opts.target is None:
        raise UsageError(
            f"--users-file {opts.users_file} names users of a backend of yours, and without "
            "--target the reference service is started with users of its own; give --target "
            "URL or drop --users-file"
        )
    if opts.target is not None:
        require_loopback(opts.target)
        for name, value in (
            ("--service-profile", opts.service_profile),
            ("--database", opts.database),
            ("--port", opts.port),
        ):
            if value is not None:
                raise UsageError(
                    f"{name} configures the reference service, which is not started with "
                    f"--target {opts.target}; drop {name} or drop --target"
                )
    if opts.service_profile not in {None, "fixed", "degraded"}:
        raise UsageError(
            f"--service-profile {opts.service_profile!r} is unknown; give fixed or degraded"
        )
    if opts.processes is not None and (opts.processes == 0 or opts.processes < -1):
        raise UsageError(
            f"--processes {opts.processes} is invalid; give 1 or more (or -1: one per core)"
        )
    if opts.samples not in ("exact", "histogram", "both", "auto"):
        raise UsageError(
            f"--samples {opts.samples!r} is invalid; give exact, histogram, both or auto"
        )
    if opts.open_rate is not None and opts.open_rate <= 0:
        raise UsageError(f"--open-rate {opts.open_rate:g} is invalid; give requests per second > 0")
    if opts.workers is not None and opts.workers < 1:
        raise UsageError(f"--workers {opts.workers} is invalid; give 1 or more")
    known = {"sqlite", "postgres", "postgresql"}
    if opts.database is not None and opts.database not in known and "://" not in opts.database:
        raise UsageError(
            f"--database {opts.database!r} is not understood; give sqlite, postgres or a "
            "URL such as postgresql+psycopg://postgres@127.0.0.1:5432/velro"
        )
    if opts.port is not None:
        check_port_free(opts.port)


def with_shape_defaults(opts: RunOptions, shape: ShapeInfo) -> RunOptions:
    """Processes and service workers the run did not give: the shape's, else one each; said."""
    processes = opts.processes if opts.processes is not None else (shape.processes or 1)
    workers = opts.workers if opts.workers is not None else (shape.service_workers or 1)
    picked = []
    if opts.processes is None and shape.processes is not None:
        picked.append(f"{processes} Locust processes")
    if opts.workers is None and shape.service_workers is not None and opts.target is None:
        picked.append(f"{workers} service workers")
    if picked:
        say(
            f"shape {shape.name}: {' and '.join(picked)}, what holds it on this machine "
            "(fixtures/shapes.toml; --processes and --workers override)"
        )
    if shape.access_token_ttl_s is not None and opts.target is not None:
        say(
            f"shape {shape.name} asks for access tokens of {shape.access_token_ttl_s} s; "
            f"{opts.target} keeps its own lifetime"
        )
    return dataclasses.replace(opts, processes=processes, workers=workers)


# The master's measured ceiling, in samples a second: the highest rate it kept up with on one
# core (1,000,000/s with 8 workers; at 2,000,000/s it fell 20 s behind), measured by
# benchmarks/master_ceiling.py --arrow at commit 6773c62 (docs/performance-scale.md).
# `--samples auto` records exactly below it and switches to histograms above.
MASTER_CEILING_SPS = 1_000_000.0


def expected_rate(opts: RunOptions, shape: ShapeInfo) -> float | None:
    """Requests a second the run should reach at its peak: the open model's rate, else every
    user at the shortest think time (a closed-model bound); None when not known."""
    if opts.open_rate:
        return opts.open_rate
    if shape.peak_users and shape.wait_s:
        return shape.peak_users / max(shape.wait_s[0], 1e-3)
    return None


def samples_mode(opts: RunOptions, shape: ShapeInfo) -> str:
    """exact or histogram: as asked, or by the expected rate against the master's ceiling."""
    if opts.samples != "auto":
        return opts.samples
    rate = expected_rate(opts, shape)
    if rate is not None and MASTER_CEILING_SPS and rate >= MASTER_CEILING_SPS:
        say(
            f"samples: histogram mode, {rate:,.0f} requests/s expected at the peak is past the "
            f"master's measured ceiling of {MASTER_CEILING_SPS:,.0f} samples/s "
            "(docs/performance-scale.md; --samples exact to record every row anyway)"
        )
        return "histogram"
    return "exact"


def resolve_shape(opts: RunOptions) -> ShapeInfo:
    explicit = (opts.warmup_s, opts.seed_users, opts.seed_teams, opts.seed_projects)
    if all(v is not None for v in explicit) and not opts.shapes_file.is_file():
        return ShapeInfo(
            name=opts.shape,
            warmup_s=float(opts.warmup_s or 0.0),
            seed_users=int(opts.seed_users or 0),
            seed_teams=int(opts.seed_teams or 0),
            seed_projects=int(opts.seed_projects or 0),
            duration_s=opts.max_duration_s,
        )
    info = load_shape(opts.shape, opts.shapes_file)
    return dataclasses.replace(
        info,
        warmup_s=info.warmup_s if opts.warmup_s is None else opts.warmup_s,
        seed_users=info.seed_users if opts.seed_users is None else opts.seed_users,
        seed_teams=info.seed_teams if opts.seed_teams is None else opts.seed_teams,
        seed_projects=info.seed_projects if opts.seed_projects is None else opts.seed_projects,
    )


def initial_config(
    opts: RunOptions,
    shape: ShapeInfo,
    run_id: str,
    target: str | None,
    profile: str,
    api: ApiFile,
) -> RunConfig:
    """config.json as known before anything starts (the service adds its URLs)."""
    workload = opts.workload_file or shape.workload_file or fixtures_dir() / "workload.toml"
    return {
        "run_id": run_id,
        "shape": opts.shape,
        "target": target or "reference",
        "target_url": target,
        "service_profile": profile,
        "processes": opts.processes,
        "open_model_rate": opts.open_rate,
        "samples_mode": samples_mode(opts, shape),
        # the API the scenarios drove: its hash is part of the configuration's
        "api_file": api.source,
        "api": api.described(),
        "budgets_file": str(opts.budgets_file.resolve()),
        "budgets_sha256": _file_sha256(opts.budgets_file),
        # the load itself: a changed shape or workload is another configuration
        "shapes_file": str(opts.shapes_file.resolve()),
        "shapes_sha256": _file_sha256(opts.shapes_file),
        "workload_file": str(workload),
        "workload_sha256": _file_sha256(workload),
        "users_file": str(opts.users_file.resolve()) if opts.users_file else None,
        "seed": {
            "users": shape.seed_users,
            "teams": shape.seed_teams,
            "projects": shape.seed_projects,
        },
        "warmup_s": shape.warmup_s,
        "service_workers": opts.workers if target is None else None,
        # the shape's access-token lifetime, given to the reference service; a target keeps its
        # own (null)
        "access_token_ttl_s": shape.access_token_ttl_s if target is None else None,
        "database": None if target else redact_url(opts.database or "sqlite"),
        "database_url": None,
        "redis": None,
        "redis_url": None,
    }


def initial_meta(opts: RunOptions, shape: ShapeInfo, run_id: str) -> RunMeta:
    """meta.json at the start: where and with what the run ran (its end is added later)."""
    return {
        "run_id": run_id,
        "started_at": utc_iso(time.time()),
        "ended_at": None,
        "measured_from": None,
        "complete": False,
        "interrupted": None,
        "git": git_state(project_root()),
        "versions": versions(),
        "machine": machine(),
        "generator": {
            "gc": None,
            "keep_alive_s": None,
            "processes": opts.processes,
            "wait_time": (
                {"kind": "between", "min_s": shape.wait_s[0], "max_s": shape.wait_s[1]}
                if shape.wait_s
                else None
            ),
        },
    }


def _file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None

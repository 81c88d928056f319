"""`velro-perf run`: one load run, from an empty folder to a judged, rendered run directory.

The order is the one docs/run-format.md describes: config.json and meta.json first, then the
load (Locust, with the metrics scraper and the generator watcher beside it), then, whether the
run ended normally or was interrupted, the end of meta.json, summary.json, junit.xml, a
history.csv row and report.html. Every process started here is stopped before it returns.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

from reports.budgets import Budgets
from reports.runfiles import Summary
from scenarios.apifile import ApiFile, load_api
from scenarios.errors import ScenarioConfigError
from velro_perf import gate
from velro_perf.errors import (
    EXIT_INVALID,
    ConfigError,
    RunInterrupted,
    UsageError,
    VelroPerfError,
)
from velro_perf.locust_proc import LocustOptions, start_locust, stop_locust
from velro_perf.paths import api_file as default_api_file
from velro_perf.paths import budgets_file as default_budgets_file
from velro_perf.paths import fixtures_dir, project_root
from velro_perf.paths import shapes_file as default_shapes_file
from velro_perf.procs import ManagedProcess
from velro_perf.progress import StatsHistoryTail, format_progress
from velro_perf.runmeta import (
    config_hash,
    git_state,
    machine,
    make_run_id,
    utc_iso,
    versions,
    write_json,
)
from velro_perf.scraper import MetricsScraper
from velro_perf.shapes import ShapeInfo, load_shape
from velro_perf.target import (
    KEEP_ALIVE_S,
    SERVICE_NICE,
    ReferenceService,
    ServiceOptions,
    check_port_free,
    check_reachable,
    redact_url,
    require_loopback,
)
from velro_perf.watcher import GeneratorWatcher

__all__ = ["RunOptions", "execute_run"]


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
    # explicit sizes replace the shape file's (tests, or a shape file not written yet)
    warmup_s: float | None = None
    seed_users: int | None = None
    seed_teams: int | None = None
    seed_projects: int | None = None


def _say(message: str) -> None:
    print(message, flush=True)


def _load_api(opts: RunOptions) -> ApiFile:
    """The run's API file, validated before anything starts (a bad one is exit 2)."""
    try:
        return load_api(opts.api_file or default_api_file())
    except ScenarioConfigError as exc:
        raise ConfigError(f"{exc} (--api)") from None


def _validate(opts: RunOptions) -> None:
    """Refuse what the run must not do, before anything is created or started."""
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


def _with_shape_defaults(opts: RunOptions, shape: ShapeInfo) -> RunOptions:
    """Processes and service workers the run did not give: the shape's, else one each; said."""
    processes = opts.processes if opts.processes is not None else (shape.processes or 1)
    workers = opts.workers if opts.workers is not None else (shape.service_workers or 1)
    picked = []
    if opts.processes is None and shape.processes is not None:
        picked.append(f"{processes} Locust processes")
    if opts.workers is None and shape.service_workers is not None and opts.target is None:
        picked.append(f"{workers} service workers")
    if picked:
        _say(
            f"shape {shape.name}: {' and '.join(picked)}, what holds it on this machine "
            "(fixtures/shapes.toml; --processes and --workers override)"
        )
    return dataclasses.replace(opts, processes=processes, workers=workers)


def _shape(opts: RunOptions) -> ShapeInfo:
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


def _make_run_dir(out: Path, run_id: str) -> tuple[Path, str]:
    """A new folder `out/run_id` (`-2`, `-3`... when two runs start in the same second)."""
    candidate, n = run_id, 1
    try:
        out.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                (out / candidate).mkdir()
                return (out / candidate).resolve(), candidate
            except FileExistsError:
                n += 1
                candidate = f"{run_id}-{n}"
    except OSError as exc:
        raise ConfigError(
            f"cannot create the run folder {out / candidate} ({exc.strerror}); "
            "give a writable folder with --out"
        ) from exc


def _file_sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class _Signals:
    """SIGINT, SIGTERM and SIGHUP become one RunInterrupted; later ones wait for cleanup."""

    NAMES: ClassVar[dict[int, str]] = {
        signal.SIGINT: "SIGINT",
        signal.SIGTERM: "SIGTERM",
        signal.SIGHUP: "SIGHUP",
    }

    def __init__(self) -> None:
        self.armed = True
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        for sig in self.NAMES:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, previous in self._previous.items():
            # None: a handler installed outside Python, which cannot be put back; use default
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = self.NAMES.get(signum, str(signum))
        if self.armed:
            self.armed = False
            raise RunInterrupted(name)
        _say(f"{name} again: still stopping the run's processes, please wait")


@dataclass
class _RunState:
    run_dir: Path
    run_id: str
    config: dict[str, Any]
    meta: dict[str, Any]
    shape: ShapeInfo
    service: ReferenceService | None = None
    locust: ManagedProcess | None = None
    scraper: MetricsScraper | None = None
    watcher: GeneratorWatcher | None = None
    interrupted: str | None = None
    locust_exit: int | None = None


def execute_run(opts: RunOptions) -> int:
    """Run the load, judge it, and return the exit code (0 pass, 1 fail, 3 invalid)."""
    _validate(opts)
    api = _load_api(opts)
    shape = _shape(opts)
    opts = _with_shape_defaults(opts, shape)
    budgets = gate.load_budgets(opts.budgets_file)
    target = require_loopback(opts.target) if opts.target else None
    if target is not None:
        check_reachable(target)
    profile = (opts.service_profile or "fixed") if target is None else "external"
    run_dir, run_id = _make_run_dir(opts.out, make_run_id(opts.shape, profile))
    state = _RunState(
        run_dir=run_dir,
        run_id=run_id,
        config=_initial_config(opts, shape, run_id, target, profile, api),
        meta=_initial_meta(opts, shape, run_id),
        shape=shape,
    )
    _say(f"run {run_id}: {run_dir}")
    error = _load_and_clean_up(state, opts, target)
    if error is not None and state.meta["measured_from"] is None:
        # nothing was measured: keep the folder only when it holds a log worth reading
        if not (run_dir / "service.log").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise error
    return _judge(state, opts, budgets)


def _initial_config(
    opts: RunOptions,
    shape: ShapeInfo,
    run_id: str,
    target: str | None,
    profile: str,
    api: ApiFile,
) -> dict[str, Any]:
    """config.json as known before anything starts (the service adds its URLs)."""
    workload = shape.workload_file or fixtures_dir() / "workload.toml"
    return {
        "run_id": run_id,
        "shape": opts.shape,
        "target": target or "reference",
        "target_url": target,
        "service_profile": profile,
        "processes": opts.processes,
        "open_model_rate": opts.open_rate,
        # the API the scenarios drove: its hash is part of the configuration's
        "api_file": api.source,
        "api": {key: value for key, value in api.describe().items() if key != "file"},
        "budgets_file": str(opts.budgets_file.resolve()),
        "budgets_sha256": _file_sha256(opts.budgets_file),
        # the load itself: a changed shape or workload is another configuration
        "shapes_file": str(opts.shapes_file.resolve()),
        "shapes_sha256": _file_sha256(opts.shapes_file),
        "workload_file": str(workload),
        "workload_sha256": _file_sha256(workload),
        "seed": {
            "users": shape.seed_users,
            "teams": shape.seed_teams,
            "projects": shape.seed_projects,
        },
        "warmup_s": shape.warmup_s,
        "service_workers": opts.workers if target is None else None,
        "database": None if target else redact_url(opts.database or "sqlite"),
        "database_url": None,
        "redis": None,
        "redis_url": None,
    }


def _initial_meta(opts: RunOptions, shape: ShapeInfo, run_id: str) -> dict[str, Any]:
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


def _load_and_clean_up(
    state: _RunState, opts: RunOptions, target: str | None
) -> VelroPerfError | None:
    """The load, then teardown whatever happened (a signal, an error, a crash); returns the
    runner's own error, to be raised once the run folder is settled."""
    error: VelroPerfError | None = None
    with _Signals() as signals:
        try:
            _load(state, opts, target)
        except RunInterrupted as exc:
            state.interrupted = exc.reason
        except VelroPerfError as exc:
            error = exc
            state.interrupted = f"error: {exc}"
        except Exception as exc:  # a bug in the runner: still clean up and keep what was measured
            traceback.print_exc()
            state.interrupted = f"crash: {type(exc).__name__}: {exc}"
        finally:
            signals.armed = False  # cleanup must not be cut short by a second Ctrl-C
            if state.interrupted is not None and error is None:
                _say(f"stopping: {state.interrupted}")
            _teardown(state)
            _finish_meta(state)
    return error


def _prepare_service(state: _RunState, opts: RunOptions) -> None:
    """The reference service's database, seed and port, named in config.json."""
    shape = state.shape
    state.service = ReferenceService(
        ServiceOptions(
            run_dir=state.run_dir,
            run_id=state.run_id,
            profile=opts.service_profile or "fixed",
            database=opts.database or "sqlite",
            use_redis=opts.use_redis,
            port=opts.port,
            workers=opts.workers or 1,  # resolved by _with_shape_defaults
            seed_users=shape.seed_users,
            seed_teams=shape.seed_teams,
            seed_projects=shape.seed_projects,
            startup_timeout_s=opts.startup_timeout_s,
        )
    )
    state.service.prepare()
    state.config["target_url"] = state.service.url
    state.config["database_url"] = redact_url(state.service.database_url)
    state.config["redis_url"] = state.service.redis_url or None
    state.config["redis"] = "127.0.0.1:6379" if state.service.redis_url else None
    state.config["redis_prefix"] = state.service.redis_prefix or None


def _load(state: _RunState, opts: RunOptions, target: str | None) -> None:
    """Start what is needed, run Locust to its end, and watch it."""
    shape = state.shape
    if target is None:
        _prepare_service(state, opts)
    state.config["config_hash"] = config_hash(state.config)
    write_json(state.run_dir / "config.json", state.config)
    write_json(state.run_dir / "meta.json", state.meta)

    if state.service is not None:
        _say(
            f"starting the reference service ({state.config['service_profile']}, "
            f"{state.config['database']}, redis {state.config['redis'] or 'off'}): "
            f"seeding {shape.seed_users} users"
        )
        state.service.start()
        state.meta["generator"]["keep_alive_s"] = KEEP_ALIVE_S
        state.meta["generator"]["service_nice"] = SERVICE_NICE
        _say(f"reference service healthy at {state.service.url}")
    host = target or (state.service.url if state.service else "")

    locust_started = time.time()
    state.locust = start_locust(
        LocustOptions(
            host=host,
            shape=opts.shape,
            run_dir=state.run_dir,
            fixtures=state.service.fixtures_path if state.service else None,
            open_rate=opts.open_rate,
            processes=opts.processes or 1,  # resolved by _with_shape_defaults
            shapes_file=opts.shapes_file,
            api_file=Path(state.config["api_file"]),
        )
    )
    state.meta["measured_from"] = locust_started + shape.warmup_s
    write_json(state.run_dir / "meta.json", state.meta)

    state.scraper = MetricsScraper(host, state.run_dir / "metrics.jsonl")
    state.scraper.start()
    stats = StatsHistoryTail(state.run_dir / "locust_stats_history.csv")
    state.watcher = GeneratorWatcher(
        state.locust.pid, state.run_dir / "generator.jsonl", stats, opts.open_rate
    )
    state.watcher.start()
    _follow(state, opts, stats, locust_started)


def _follow(
    state: _RunState, opts: RunOptions, stats: StatsHistoryTail, locust_started: float
) -> None:
    """Wait for Locust to end by itself, printing progress; stop it if it overruns."""
    assert state.locust is not None
    total = state.shape.duration_s
    if opts.max_duration_s is not None:
        limit = opts.max_duration_s
    elif total is not None:
        limit = total + max(60.0, 0.25 * total)  # slack for start-up and a graceful stop
    else:
        limit = 3600.0  # every load run is bounded in time, even when the shape does not say
    next_line = time.monotonic() + opts.progress_every_s
    while state.locust.poll() is None:
        time.sleep(0.25)
        elapsed = time.time() - locust_started
        if time.monotonic() >= next_line:
            cpu = (
                state.watcher.last["cpu_percent_max"]
                if state.watcher and state.watcher.last
                else None
            )
            _say(format_progress(elapsed, total, stats.latest(), cpu))
            next_line += opts.progress_every_s
        if state.service is not None and not state.service.alive():
            raise RunInterrupted(
                f"crash: the reference service exited; see {state.service.log_path}"
            )
        if elapsed > limit:
            raise RunInterrupted(
                f"timeout: Locust still running after {limit:.0f} s; the shape did not stop it"
            )
    state.locust_exit = state.locust.poll()
    last = stats.latest()
    line = format_progress(time.time() - locust_started, total, last, None)
    if state.watcher is not None:
        line += f"  generator CPU peak {state.watcher.cpu_max_seen:.0f} %"
    _say(line + "  (done)")


def _teardown(state: _RunState) -> None:
    if state.locust is not None:
        code = stop_locust(state.locust)
        if state.locust_exit is None:
            state.locust_exit = code
    for worker in (state.watcher, state.scraper):
        if worker is not None:
            worker.stop()
    if state.service is not None:
        state.service.stop()


def _finish_meta(state: _RunState) -> None:
    meta = state.meta
    meta["ended_at"] = utc_iso(time.time())
    meta["interrupted"] = state.interrupted
    meta["complete"] = state.interrupted is None and state.meta["measured_from"] is not None
    meta["locust_exit_code"] = state.locust_exit
    if state.scraper is not None:
        scraper = state.scraper
        meta["metrics_scraper"] = {
            "url": scraper.url,
            "scrapes": scraper.scrapes,
            "errors": scraper.errors,
            "unsupported": scraper.unsupported,
        }
        if scraper.unsupported:
            _say(f"the target does not serve {scraper.url} (404): no metrics.jsonl")
    actions_path = state.run_dir / "generator_actions.json"
    if actions_path.is_file():
        try:
            actions = json.loads(actions_path.read_text())
        except (OSError, ValueError) as exc:
            _say(f"warning: {actions_path} is unreadable ({exc}); generator actions not recorded")
        else:
            if isinstance(actions, dict):
                _merge_actions(meta["generator"], actions)
    write_json(state.run_dir / "meta.json", meta)


def _merge_actions(generator: dict[str, Any], actions: dict[str, Any]) -> None:
    """Fold the locustfile's generator_actions.json into meta.generator.

    `processes` stays the number of Locust processes; the locustfile's per-process GC reports
    go beside it as `gc_by_process`.
    """
    for key, value in actions.items():
        if key == "processes" and isinstance(value, dict):
            generator["gc_by_process"] = value
        else:
            generator[key] = value


def _judge(state: _RunState, opts: RunOptions, budgets: Budgets) -> int:
    run_dir = state.run_dir
    if state.locust_exit not in {None, 0, 1}:
        # 1 is Locust's "some requests failed"; anything else is an error in the test itself
        _say(f"warning: Locust exited with code {state.locust_exit}; see {run_dir / 'locust.log'}")
    summary = gate.judge_run(run_dir, budgets)
    code = gate.exit_code_of(summary)
    if state.meta["complete"]:
        try:
            gate.append_history(opts.out, summary)
        except VelroPerfError as exc:
            _say(f"warning: history not updated: {exc}")
    try:
        report = gate.render_run(run_dir)
        _say(f"report: {report}")
    except VelroPerfError as exc:
        _say(f"warning: report not rendered: {exc}")
    print_verdict(summary)
    if state.interrupted is not None:
        _say(
            f"run incomplete ({state.interrupted}): exit {EXIT_INVALID}; what was measured is "
            f"in {run_dir}"
        )
        return max(code, EXIT_INVALID)
    return code


def print_verdict(summary: Summary, stream: Any = None) -> None:
    out = stream or sys.stdout
    for budget in summary["budgets"]:
        sentence = budget.get("sentence") or f"{budget['id']}: {budget['verdict']}"
        out.write(f"  {sentence}\n")
    for reason in summary["invalid_reasons"]:
        out.write(f"  invalid: {reason}\n")
    out.write(f"verdict: {summary['verdict']} (exit {gate.exit_code_of(summary)})\n")
    out.flush()

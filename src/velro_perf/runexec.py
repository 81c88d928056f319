"""`velro-perf run`, executing: the load (the reference service, Locust, the metrics scraper
and the generator watcher), followed to its end, then every process stopped and meta.json
finished, whether the run ended normally, was interrupted or the runner failed."""

from __future__ import annotations

import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

from velro_perf.errors import RunInterrupted, VelroPerfError
from velro_perf.locust_proc import LocustOptions, start_locust, stop_locust
from velro_perf.procs import ManagedProcess
from velro_perf.progress import StatsHistoryTail, format_progress
from velro_perf.reports.runfiles import GeneratorActions, GeneratorMeta, RunConfig, RunMeta
from velro_perf.reports.runfolder import RunFolder
from velro_perf.runmeta import config_hash, utc_iso
from velro_perf.runplan import RunOptions, say
from velro_perf.scraper import MetricsScraper
from velro_perf.shapes import ShapeInfo
from velro_perf.target import (
    KEEP_ALIVE_S,
    SERVICE_NICE,
    ReferenceService,
    ServiceOptions,
    redact_url,
)
from velro_perf.watcher import GeneratorWatcher

__all__ = ["Follow", "RunState", "load_and_clean_up"]


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
        say(f"{name} again: still stopping the run's processes, please wait")


@dataclass
class RunState:
    run_dir: Path
    run_id: str
    config: RunConfig
    meta: RunMeta
    shape: ShapeInfo
    service: ReferenceService | None = None
    locust: ManagedProcess | None = None
    scraper: MetricsScraper | None = None
    watcher: GeneratorWatcher | None = None
    interrupted: str | None = None
    locust_exit: int | None = None

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.run_dir)


# what runs while Locust does: by default _follow (wait for the shape's end); velro-perf
# capacity steers the levels instead. Arguments: state, options, the stats tail, Locust's start
Follow = Callable[[RunState, RunOptions, StatsHistoryTail, float], None]


def load_and_clean_up(
    state: RunState, opts: RunOptions, target: str | None, follow: Follow | None = None
) -> VelroPerfError | None:
    """The load, then teardown whatever happened (a signal, an error, a crash); returns the
    runner's own error, to be raised once the run folder is settled."""
    error: VelroPerfError | None = None
    with _Signals() as signals:
        try:
            _load(state, opts, target, follow or _follow)
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
                say(f"stopping: {state.interrupted}")
            _teardown(state)
            _finish_meta(state)
    return error


def _prepare_service(state: RunState, opts: RunOptions) -> None:
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
            workers=opts.workers or 1,  # resolved by with_shape_defaults
            seed_users=shape.seed_users,
            seed_teams=shape.seed_teams,
            seed_projects=shape.seed_projects,
            startup_timeout_s=opts.startup_timeout_s,
            access_token_ttl_s=shape.access_token_ttl_s,
        )
    )
    state.service.prepare()
    state.config["target_url"] = state.service.url
    state.config["database_url"] = redact_url(state.service.database_url)
    state.config["redis_url"] = state.service.redis_url or None
    state.config["redis"] = "127.0.0.1:6379" if state.service.redis_url else None
    state.config["redis_prefix"] = state.service.redis_prefix or None


def _load(state: RunState, opts: RunOptions, target: str | None, follow: Follow) -> None:
    """Start what is needed, run Locust to its end, and watch it."""
    shape = state.shape
    if target is None:
        _prepare_service(state, opts)
    state.config["config_hash"] = config_hash(state.config)
    state.folder.write_config(state.config)
    state.folder.write_meta(state.meta)

    if state.service is not None:
        say(
            f"starting the reference service ({state.config['service_profile']}, "
            f"{state.config['database']}, redis {state.config['redis'] or 'off'}): "
            f"seeding {shape.seed_users} users"
        )
        state.service.start()
        state.meta["generator"]["keep_alive_s"] = KEEP_ALIVE_S
        state.meta["generator"]["service_nice"] = SERVICE_NICE
        say(f"reference service healthy at {state.service.url}")
    host = target or (state.service.url if state.service else "")

    locust_started = time.time()
    state.locust = start_locust(
        LocustOptions(
            host=host,
            shape=opts.shape,
            run_dir=state.run_dir,
            fixtures=state.service.fixtures_path if state.service else opts.fixtures,
            open_rate=opts.open_rate,
            processes=opts.processes or 1,  # resolved by with_shape_defaults
            shapes_file=opts.shapes_file,
            api_file=Path(state.config["api_file"]),
            workload_file=opts.workload_file,
            capacity_plan=opts.capacity_plan,
            samples=str(state.config.get("samples_mode") or "exact"),
            users_file=opts.users_file,
            seed=_api_seed(opts),
        )
    )
    state.meta["measured_from"] = locust_started + shape.warmup_s
    state.folder.write_meta(state.meta)

    state.scraper = MetricsScraper(host, state.run_dir / "metrics.jsonl")
    state.scraper.start()
    stats = StatsHistoryTail(state.run_dir / "locust_stats_history.csv")
    state.watcher = GeneratorWatcher(
        state.locust.pid, state.run_dir / "generator.jsonl", stats, opts.open_rate
    )
    state.watcher.start()
    follow(state, opts, stats, locust_started)


def _follow(
    state: RunState, opts: RunOptions, stats: StatsHistoryTail, locust_started: float
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
            say(format_progress(elapsed, total, stats.latest(), cpu))
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
    say(line + "  (done)")


def _teardown(state: RunState) -> None:
    if state.locust is not None:
        code = stop_locust(state.locust)
        if state.locust_exit is None:
            state.locust_exit = code
    for worker in (state.watcher, state.scraper):
        if worker is not None:
            worker.stop()
    if state.service is not None:
        state.service.stop()


def _finish_meta(state: RunState) -> None:
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
            say(f"the target does not serve {scraper.url} (404): no metrics.jsonl")
    actions = state.folder.generator_actions()  # None: absent or unreadable
    if actions is not None:
        _merge_actions(meta["generator"], actions)
    state.folder.write_meta(meta)


def _merge_actions(generator: GeneratorMeta, actions: GeneratorActions) -> None:
    """Fold the locustfile's generator_actions.json into meta.generator: `processes` stays the
    number of Locust processes, the per-process GC reports go beside it as `gc_by_process`."""
    if "gc" in actions:
        generator["gc"] = actions["gc"]
    if "processes" in actions:
        generator["gc_by_process"] = actions["processes"]


def _api_seed(opts: RunOptions) -> tuple[int, int, int] | None:
    """The seed's sizes asked for on the command line (capacity against a --target), for the
    locustfile to provision through the API; None: the shape's."""
    sizes = (opts.seed_users, opts.seed_teams, opts.seed_projects)
    if opts.target is None or opts.fixtures is not None or None in sizes:
        return None
    users, teams, projects = (int(n or 0) for n in sizes)
    return users, teams, projects

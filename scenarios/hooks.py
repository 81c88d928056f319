"""Wiring into Locust's events: options, configuration, seed, recording, GC, open model.

Who does what:

- local (one process): everything, writes <out>/samples/ itself (worker = `local`);
- master: loads or provisions the seed once and sends it to each worker that asks
  (custom messages `velro_hello` / `velro_setup`), writes the workers' rows to samples/
  (`events.worker_report`), writes open_model.json and generator_actions.json;
- worker: asks for the seed at test start, generates load, hands its rows, open-model
  figures and GC actions to the master (`events.report_to_master`).
"""

from __future__ import annotations

from locust import events
from locust.runners import MasterRunner, WorkerRunner

import logging
import os
import sys
from pathlib import Path
from typing import Any

import gevent
import psutil

from velro_perf.reports.runfiles import WorkerHealth
from velro_perf.reports.runfolder import RunFolder
from velro_perf.scenarios.api import BackendApi
from velro_perf.scenarios.apimodel import ApiFile
from velro_perf.scenarios.args import Options, add_arguments
from velro_perf.scenarios.capacityplan import RATE_MESSAGE
from velro_perf.scenarios.errors import ScenarioError
from velro_perf.scenarios.health import GeneratorHealth, set_heartbeat_liveness
from velro_perf.scenarios.http import Channel, Transport
from velro_perf.scenarios.openmodel import combine_reports
from velro_perf.scenarios.provision import provision
from velro_perf.scenarios.recorder import encode_batch
from velro_perf.scenarios.runtime import Role, Runtime
from velro_perf.scenarios.seed import Seed, load_seed, parse_seed
from velro_perf.scenarios.stalls import HeartbeatGaps, LoopWatch
from velro_perf.scenarios.users import USER_CLASSES
from velro_perf.scenarios.usersfile import load_users_file, users_seed

__all__ = ["install", "setup"]

log = logging.getLogger("velro.scenarios")
FLUSH_INTERVAL_S = 2.0
MEMORY_CHECK_S = 5.0
HEALTH_INTERVAL_S = 1.0


def _role(environment: Any) -> Role:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        return Role.MASTER
    if isinstance(runner, WorkerRunner):
        return Role.WORKER
    return Role.LOCAL


def _folder(runtime: Runtime) -> RunFolder | None:
    """The run folder the locustfile writes its own files to (none without --velro-out)."""
    return RunFolder(Path(runtime.options.out)) if runtime.options.out else None


def _write_reports(runtime: Runtime) -> None:
    if runtime.role is Role.LOCAL:
        runtime.open_reports["local"] = runtime.open_model.report()
        runtime.gc_reports["local"] = runtime.gc.actions
    folder = _folder(runtime)
    if folder is None:
        return
    folder.write_open_model(
        combine_reports(
            runtime.open_reports,
            runtime.options.open_rate or None,
            runtime.options.open_max_late_share,
        )
    )
    folder.write_generator_actions(
        {
            "gc": "each generating process: gc.collect(); gc.freeze(); gc.disable() at test start, "
            "gc.unfreeze(); gc.enable() at test stop",
            "processes": runtime.gc_reports,
        }
    )


def _flush(runtime: Runtime) -> None:
    runtime.recorder.flush(runtime.role.value)
    _write_reports(runtime)


def _service_key_known(options: Options, api: ApiFile) -> bool:
    if options.service_key or api.service_by_grant:
        return True
    if options.fixtures:
        return bool(load_seed(options.fixtures).service_key)
    return False


def _weigh_user_classes(environment: Any, runtime: Runtime) -> None:
    """The environment's user classes become the workload's: weighed subclasses of the
    classes it was given (a class picked on Locust's command line stays picked), without
    those the workload switches off."""
    present = {user_class.__name__ for user_class in environment.user_classes}
    classes = {
        category: user_class
        for category, user_class in USER_CLASSES.items()
        if user_class.__name__ in present
    }
    if runtime.workload.users["service_key"].enabled and not _service_key_known(
        runtime.options, runtime.api
    ):
        log.warning(
            "service-key users disabled: no service key (give --velro-fixtures from `velro seed` "
            "with a key, or --velro-service-key / VELRO_PERF_SERVICE_KEY)"
        )
        classes.pop("service_key", None)
    if runtime.options.users_file and "authorization" in classes:
        # a users file brings users only: nothing of theirs to read, share or decide on
        log.warning(
            "authorization users off: the users file %s brings users, no resources to read",
            runtime.options.users_file,
        )
        classes.pop("authorization")
    for category in list(classes):
        off = runtime.api.category_off(category)
        if off is not None and runtime.workload.users[category].enabled:
            # an operation the backend lacks: its users do not run (its budgets are judged
            # not applicable, from config.json's api.lacks)
            log.warning("%s users off: %s", category, off)
            classes.pop(category)
    ours = {user_class.__name__ for user_class in USER_CLASSES.values()}
    others = [cls for cls in environment.user_classes if cls.__name__ not in ours]
    environment.user_classes[:] = [*runtime.user_classes(classes), *others]


def _obtain_seed(environment: Any, runtime: Runtime) -> Seed:
    options = runtime.options
    if options.users_file:
        return users_seed(options.users_file, runtime.shape.seed_users, options.service_key or None)
    if options.fixtures:
        seed = load_seed(options.fixtures)
        if options.service_key and not seed.service_key:
            seed = Seed(seed.password, options.service_key, seed.users)
        return seed
    if not environment.host:
        raise ScenarioError(
            "no --host given; the scenarios need the target's base URL to provision"
        )
    transport = Transport(environment.host, environment.events.request, concurrency=16)
    shape = runtime.shape
    log.info(
        "no --velro-fixtures: provisioning %d users, %d teams, %d projects on %s through the API",
        shape.seed_users,
        shape.seed_teams,
        shape.seed_projects,
        environment.host,
    )
    api = BackendApi(
        Channel(transport, runtime.recorder, runtime.identity, category="setup"), runtime.api
    )
    try:
        return provision(
            api,
            runtime.identity,
            shape.seed_users,
            shape.seed_teams,
            shape.seed_projects,
            options.service_key or None,
            concurrency=runtime.api.setup_concurrency,
        )
    finally:
        transport.close()


def _prepare_seed(environment: Any, runtime: Runtime) -> None:
    """Load or provision the seed once per (host, fixtures) and keep it across tests."""
    key = (
        str(environment.host),
        runtime.options.users_file
        or runtime.options.fixtures
        or f"provision:{runtime.shape.name}:{runtime.api.sha256}",
    )
    seeds = runtime.seeds
    if seeds.key == key and seeds.source is not None:
        return
    seeds.clear()
    try:
        seeds.set(_obtain_seed(environment, runtime), key)
    except ScenarioError as error:
        seeds.fail(str(error))
        log.error("%s", error)
        environment.process_exit_code = 2
        gevent.spawn_later(0.1, environment.runner.quit)
    finally:
        _flush(runtime)
        if environment.shape_class is not None:
            # provisioning is not part of the shape's stages: they start after it
            environment.shape_class.reset_time()


def _worker_count(environment: Any) -> int:
    clients = environment.runner.clients
    return max(1, len(clients.ready) + len(clients.spawning) + len(clients.running))


class _Hooks:
    """The listeners of one Environment; each finds the runtime on the environment."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.greenlets: list[gevent.Greenlet[Any, Any]] = []
        self.health: GeneratorHealth | None = None
        # this process's own event loop, watched from init to quit (scenarios/stalls.py)
        self.loop = LoopWatch()
        self.beats: HeartbeatGaps | None = None

    @property
    def runtime(self) -> Runtime:
        return Runtime.of(self.environment)

    def install(self, role: Role) -> None:
        environment = self.environment
        hooks = environment.events
        hooks.test_start.add_listener(self.on_test_start)
        hooks.test_stop.add_listener(self.on_test_stop)
        hooks.quitting.add_listener(self.on_quitting)
        self.loop.start()
        if role is Role.MASTER:
            environment.runner.register_message("velro_hello", self.on_hello)
            hooks.worker_report.add_listener(self.on_worker_report)
            hooks.heartbeat_sent.add_listener(self.on_heartbeat)
        elif role is Role.WORKER:
            environment.runner.register_message("velro_setup", self.on_setup)
            environment.runner.register_message(RATE_MESSAGE, self.on_rate)
            hooks.report_to_master.add_listener(self.on_report_to_master)
        if role.generates:
            self.greenlets.append(gevent.spawn(self.memory_watch))
        if role.writes:
            settings: WorkerHealth = {"role": role.value}
            if role is Role.MASTER:
                settings.update(set_heartbeat_liveness(self.runtime.options.heartbeat_liveness))
                self.beats = HeartbeatGaps(float(settings["heartbeat_interval_s"]))
            self.health = GeneratorHealth(environment.runner, self.shape_target, settings)
            if self.beats is not None:
                self.health.heartbeat_gaps = self.beats.gaps
            self.greenlets.append(gevent.spawn(self.flusher))
            self.greenlets.append(gevent.spawn(self.watch_health))

    def shape_target(self) -> int | None:
        """The user count the shape asks for now (None outside its stages)."""
        shape = self.environment.shape_class
        if shape is None:
            target = getattr(self.environment.runner, "target_user_count", None)
            return int(target) if target is not None else None
        wanted = shape.tick()
        return int(wanted[0]) if wanted else None

    def watch_health(self) -> None:
        while True:
            gevent.sleep(HEALTH_INTERVAL_S)
            if self.health is not None:
                self.health.tick()

    def flush(self) -> None:
        runtime = self.runtime
        _flush(runtime)
        if self.health is not None:
            self.health.add_stalls(runtime.role.value, self.loop.take(), self.loop.report())
            folder = _folder(runtime)
            if folder is not None:
                folder.write_generator_health(self.health.report())

    def flusher(self) -> None:
        while True:
            gevent.sleep(FLUSH_INTERVAL_S)
            try:
                self.flush()
            except OSError as error:
                log.error("could not write the run files: %s", error)

    def memory_watch(self) -> None:
        process = psutil.Process()
        while True:
            gevent.sleep(MEMORY_CHECK_S)
            self.runtime.gc.check_memory(process.memory_info().rss / 2**20)

    def on_hello(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        """Master: a worker asks for the seed at its test start."""
        runtime = self.runtime
        source = runtime.seeds.source
        data = {
            "seed": source.seed.to_json() if source else None,
            "error": runtime.seeds.error,
            "open_rate": runtime.options.open_rate,
            "processes": _worker_count(environment),
        }
        environment.runner.send_message("velro_setup", data, client_id=msg.node_id)

    def on_setup(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        """Worker: the master's seed and the open-model share of this process."""
        runtime = self.runtime
        data = msg.data
        rate = data.get("open_rate") or 0.0
        runtime.open_model.start(rate / data.get("processes", 1) if rate else None)
        if data.get("seed"):
            runtime.seeds.set(parse_seed(data["seed"], "seed from the master"))
        else:
            log.error("the master has no seed: %s", data.get("error"))
            runtime.seeds.fail(str(data.get("error")))

    def on_rate(self, environment: Any, msg: Any, **_kwargs: Any) -> None:
        """Worker: a capacity search's next open-model rate, this process's share."""
        self.runtime.open_model.retarget(float(msg.data["rate"]))

    def on_test_start(self, environment: Any, **_kwargs: Any) -> None:
        runtime = self.runtime
        if runtime.role is Role.WORKER:
            # a worker learns the master's options with its first spawn
            try:
                options = Options.from_parsed(environment.parsed_options)
                if options != runtime.options:
                    runtime = runtime.with_options(options)
                    runtime.attach(environment)
            except ScenarioError as error:
                log.error("%s", error)
                environment.process_exit_code = 2
                gevent.spawn_later(0.1, environment.runner.quit)
                return
            runtime.seeds.clear()
            runtime.gc.test_start()
            environment.runner.send_message("velro_hello", {"pid": os.getpid()})
            return
        _prepare_seed(environment, runtime)
        if runtime.role is Role.LOCAL:
            runtime.open_model.start(runtime.options.open_rate or None)
            runtime.gc.test_start()

    def on_test_stop(self, environment: Any, **_kwargs: Any) -> None:
        runtime = self.runtime
        if runtime.role.generates:
            runtime.gc.test_stop()
        if runtime.role.writes:
            self.flush()

    def on_quitting(self, environment: Any, **_kwargs: Any) -> None:
        if self.runtime.role.writes:
            self.flush()
            self.runtime.recorder.close()
        gevent.killall(self.greenlets, block=False)
        self.loop.stop()

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
        runtime = self.runtime
        if runtime.recorder.histogram:
            data["velro_histograms"] = runtime.recorder.take_histograms()
        if runtime.recorder.exact:
            data["velro_samples"] = encode_batch(runtime.recorder.take())
        data["velro_open"] = runtime.open_model.report()
        data["velro_gc"] = runtime.gc.actions
        data["velro_stalls"] = {"stalls": self.loop.take(), "loop": self.loop.report()}

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
        runtime = self.runtime
        rows = data.get("velro_samples")
        if rows:
            runtime.recorder.write(rows, client_id)
        histograms = data.get("velro_histograms")
        if histograms:
            runtime.recorder.write_histograms(histograms, client_id)
        if "velro_open" in data:
            runtime.open_reports[client_id] = data["velro_open"]
        if "velro_gc" in data:
            runtime.gc_reports[client_id] = data["velro_gc"]
        stalls = data.get("velro_stalls")
        if stalls and self.health is not None:
            self.health.add_stalls(client_id, stalls["stalls"], stalls["loop"])

    def on_heartbeat(self, client_id: str, timestamp: float, **_kwargs: Any) -> None:
        """Master: a worker's heartbeat came (Locust's `heartbeat_sent`)."""
        if self.beats is not None:
            self.beats.beat(client_id, timestamp)


def _build(environment: Any, role: Role) -> Runtime:
    options = Options.from_parsed(environment.parsed_options)
    try:
        return Runtime.build(options, role)
    except ScenarioError as error:
        if role is not Role.WORKER:
            raise
        # a worker on another machine may lack the master's files; it runs on the master's
        # options from its first spawn, and on the defaults until then
        log.info(
            "options not usable on this worker yet (%s); the master's come at test start", error
        )
        return Runtime.build(Options.from_parsed(None), role)


def setup(environment: Any) -> Runtime:
    """Build the environment's runtime, attach it and register its listeners; returns it.

    Raises ScenarioError for unusable options (the init listener exits 2 with the message).
    """
    role = _role(environment)
    runtime = _build(environment, role)
    if runtime.options.users_file and role.writes:
        # a users file that cannot serve the shape stops the run before any load (exit 2)
        load_users_file(runtime.options.users_file, runtime.shape.seed_users)
    runtime.attach(environment)
    if role.writes:
        _weigh_user_classes(environment, runtime)
    _Hooks(environment).install(role)
    options = runtime.options
    log.info(
        "velro scenarios: shape %r, API %s, workload %s, out %s, seed %s, %s model",
        runtime.shape.name,
        runtime.api.source,
        runtime.workload_file,
        options.out or "(no samples)",
        options.users_file or options.fixtures or "provisioned through the API",
        f"open ({options.open_rate:g} rps)" if options.open_rate else "closed",
    )
    return runtime


def _on_init(environment: Any, **_kwargs: Any) -> None:
    try:
        setup(environment)
    except ScenarioError as error:
        log.error("%s", error)
        sys.exit(2)


def install() -> None:
    """Register the listeners that build each Environment's runtime; called once by the
    locustfile."""
    # locust's EventHook.add_listener has no annotations
    events.init_command_line_parser.add_listener(add_arguments)  # type: ignore[no-untyped-call]
    events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]

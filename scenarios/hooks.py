"""Wiring into Locust's events: options, configuration, seed, recording, GC, open model.

Who does what:

- local (one process): everything, writes <out>/samples.csv itself (worker = `local`);
- master: loads or provisions the seed once and sends it to each worker that asks
  (custom messages `velro_hello` / `velro_setup`), appends the workers' rows to samples.csv
  (`events.worker_report`), writes open_model.json and generator_actions.json;
- worker: asks for the seed at test start, generates load, hands its rows, open-model
  figures and GC actions to the master (`events.report_to_master`).
"""

from __future__ import annotations

from locust import events
from locust.contrib.fasthttp import FastHttpSession
from locust.runners import MasterRunner, WorkerRunner

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import gevent
import psutil

from scenarios.args import add_arguments
from scenarios.errors import ScenarioError
from scenarios.openmodel import combine_reports
from scenarios.provision import provision
from scenarios.runtime import runtime
from scenarios.seed import Seed, load_seed, parse_seed
from scenarios.users import USER_CLASSES

__all__ = ["install"]

log = logging.getLogger("velro.scenarios")
FLUSH_INTERVAL_S = 2.0
MEMORY_CHECK_S = 5.0


class _State:
    """What this process knows beyond `runtime`: its role and what workers reported."""

    def __init__(self) -> None:
        self.role = "local"
        self.seed_key: tuple[str, str, str] | None = None
        self.seed_error: str | None = None
        self.open_reports: dict[str, dict[str, Any]] = {}
        self.gc_reports: dict[str, dict[str, Any]] = {}


state = _State()


def _write_json(name: str, payload: dict[str, Any]) -> None:
    options = runtime.options
    if options is None or not options.out:
        return
    path = Path(options.out) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    os.replace(temporary, path)  # readers (the runner's watcher) never see half a file


def _write_reports() -> None:
    options = runtime.options
    if options is None:
        return
    if state.role == "local":
        state.open_reports["local"] = runtime.open_model.report()
        state.gc_reports["local"] = runtime.gc.actions
    _write_json("open_model.json", combine_reports(state.open_reports, options.open_rate or None))
    _write_json(
        "generator_actions.json",
        {
            "gc": "each generating process: gc.collect(); gc.freeze(); gc.disable() at test start, "
            "gc.unfreeze(); gc.enable() at test stop",
            "processes": state.gc_reports,
        },
    )


def _flush() -> None:
    worker = "master" if state.role == "master" else "local"
    runtime.recorder.flush(worker)
    _write_reports()


def _apply_workload(environment: Any) -> None:
    """Set Locust's weight/fixed_count from the workload file; drop disabled classes."""
    workload = runtime.workload
    api = runtime.api
    assert workload is not None
    assert api is not None
    for category, user_class in USER_CLASSES.items():
        mix = workload.users[category]
        user_class.weight = mix.weight
        user_class.fixed_count = mix.fixed_count
        off = api.category_off(category)
        if off is not None and mix.enabled:
            # an operation the backend lacks: its users do not run (its budgets are judged
            # not applicable, from config.json's api.lacks)
            log.warning("%s users off: %s", category, off)
            user_class.weight = 0
            user_class.fixed_count = 0
    key_known = _service_key_known()
    if (
        not key_known
        and USER_CLASSES["service_key"].weight + USER_CLASSES["service_key"].fixed_count
    ):
        log.warning(
            "service-key users disabled: no service key (give --velro-fixtures from `velro seed` "
            "with a key, or --velro-service-key / VELRO_PERF_SERVICE_KEY)"
        )
        USER_CLASSES["service_key"].weight = 0
        USER_CLASSES["service_key"].fixed_count = 0
    environment.user_classes[:] = [
        user_class
        for user_class in environment.user_classes
        if user_class.weight or user_class.fixed_count
    ]


def _service_key_known() -> bool:
    options = runtime.options
    assert options is not None
    if options.service_key:
        return True
    if options.fixtures:
        return bool(load_seed(options.fixtures).service_key)
    return False


def _obtain_seed(environment: Any) -> Seed:
    options = runtime.options
    assert options is not None
    assert runtime.shape is not None
    if options.fixtures:
        seed = load_seed(options.fixtures)
        if options.service_key and not seed.service_key:
            seed = Seed(seed.password, options.service_key, seed.users)
        return seed
    if not environment.host:
        raise ScenarioError(
            "no --host given; the scenarios need the target's base URL to provision"
        )
    session = FastHttpSession(
        base_url=environment.host,
        request_event=environment.events.request,
        user=None,
        concurrency=16,
    )
    shape = runtime.shape
    log.info(
        "no --velro-fixtures: provisioning %d users, %d teams, %d projects on %s through the API",
        shape.seed_users,
        shape.seed_teams,
        shape.seed_projects,
        environment.host,
    )
    assert runtime.api is not None
    return provision(
        session,
        runtime.api,
        shape.seed_users,
        shape.seed_teams,
        shape.seed_projects,
        options.service_key or None,
        concurrency=runtime.api.setup_concurrency,
    )


def _prepare_seed(environment: Any) -> None:
    """Load or provision the seed once per (host, fixtures) and keep it across tests."""
    options = runtime.options
    assert options is not None
    assert runtime.shape is not None
    key = (
        str(environment.host),
        options.fixtures or f"provision:{runtime.shape.name}",
        str(options.api_file),
    )
    if state.seed_key == key and runtime.seeds.seed is not None:
        return
    runtime.seeds.clear()
    state.seed_error = None
    try:
        runtime.seeds.set(_obtain_seed(environment))
        state.seed_key = key
    except ScenarioError as error:
        state.seed_error = str(error)
        runtime.seeds.fail()
        log.error("%s", error)
        environment.process_exit_code = 2
        gevent.spawn_later(0.1, environment.runner.quit)
    finally:
        _flush()
        if environment.shape_class is not None:
            # provisioning is not part of the shape's stages: they start after it
            environment.shape_class.reset_time()


def _setup_message() -> dict[str, Any]:
    options = runtime.options
    assert options is not None
    seed = runtime.seeds.seed
    return {
        "seed": seed.to_json() if seed else None,
        "error": state.seed_error,
        "open_rate": options.open_rate,
    }


def _worker_count(environment: Any) -> int:
    clients = environment.runner.clients
    return max(1, len(clients.ready) + len(clients.spawning) + len(clients.running))


def _on_hello(environment: Any, msg: Any, **_kwargs: Any) -> None:
    """Master: a worker asks for the seed at its test start."""
    data = _setup_message()
    data["processes"] = _worker_count(environment)
    environment.runner.send_message("velro_setup", data, client_id=msg.node_id)


def _on_setup(environment: Any, msg: Any, **_kwargs: Any) -> None:
    """Worker: the master's seed and the open-model share of this process."""
    data = msg.data
    rate = data.get("open_rate") or 0.0
    runtime.open_model.start(rate / data.get("processes", 1) if rate else None)
    if data.get("seed"):
        runtime.seeds.set(parse_seed(data["seed"], "seed from the master"))
    else:
        log.error("the master has no seed: %s", data.get("error"))
        runtime.seeds.fail()


def _configure(environment: Any) -> None:
    runtime.configure(environment.parsed_options)
    assert runtime.options is not None
    runtime.recorder.configure(runtime.options.out, writes=state.role != "worker")


def _on_init(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        state.role = "master"
        runner.register_message("velro_hello", _on_hello)
    elif isinstance(runner, WorkerRunner):
        state.role = "worker"
        runner.register_message("velro_setup", _on_setup)
    else:
        state.role = "local"
    environment.events.request.add_listener(runtime.recorder.on_request)
    if state.role != "master":
        gevent.spawn(_memory_watch)
    try:
        _configure(environment)
    except ScenarioError as error:
        if state.role == "worker":
            # a worker learns the master's options with its first spawn; try again then
            log.info("options not usable yet on this worker (%s); retrying at test start", error)
            return
        log.error("%s", error)
        sys.exit(2)
    if state.role != "worker":
        _apply_workload(environment)
        gevent.spawn(_flusher)
    options = runtime.options
    assert options is not None
    log.info(
        "velro scenarios: shape %r, API %s, workload %s, out %s, seed %s, %s model",
        runtime.shape.name if runtime.shape else None,
        options.api_file,
        runtime.workload_file,
        options.out or "(no samples)",
        options.fixtures or "provisioned through the API",
        f"open ({options.open_rate:g} rps)" if options.open_rate else "closed",
    )


def _flusher() -> None:
    while True:
        gevent.sleep(FLUSH_INTERVAL_S)
        try:
            _flush()
        except OSError as error:
            log.error("could not write the run files: %s", error)


def _memory_watch() -> None:
    process = psutil.Process()
    while True:
        gevent.sleep(MEMORY_CHECK_S)
        runtime.gc.check_memory(process.memory_info().rss / 2**20)


def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    try:
        _configure(environment)
    except ScenarioError as error:
        log.error("%s", error)
        environment.process_exit_code = 2
        gevent.spawn_later(0.1, environment.runner.quit)
        return
    if state.role == "worker":
        runtime.seeds.clear()
        runtime.gc.test_start()
        environment.runner.send_message("velro_hello", {"pid": os.getpid()})
        return
    _prepare_seed(environment)
    if state.role == "local":
        assert runtime.options is not None
        runtime.open_model.start(runtime.options.open_rate or None)
        runtime.gc.test_start()


def _on_test_stop(environment: Any, **_kwargs: Any) -> None:
    if state.role != "master":
        runtime.gc.test_stop()
    if state.role != "worker":
        _flush()


def _on_quitting(environment: Any, **_kwargs: Any) -> None:
    if state.role != "worker":
        _flush()


def _on_report_to_master(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    data["velro_samples"] = runtime.recorder.take()
    data["velro_open"] = runtime.open_model.report()
    data["velro_gc"] = runtime.gc.actions


def _on_worker_report(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    rows = data.get("velro_samples")
    if rows:
        runtime.recorder.write(rows, client_id)
    if "velro_open" in data:
        state.open_reports[client_id] = data["velro_open"]
    if "velro_gc" in data:
        state.gc_reports[client_id] = data["velro_gc"]


def install() -> None:
    """Register the listeners; called once by the locustfile."""
    events.init_command_line_parser.add_listener(add_arguments)
    events.init.add_listener(_on_init)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
    events.quitting.add_listener(_on_quitting)
    events.report_to_master.add_listener(_on_report_to_master)
    events.worker_report.add_listener(_on_worker_report)

"""One Locust Environment's scenario state, built whole when Locust initialises and attached
to that Environment, as Locust's own examples read `environment.parsed_options`.

`Runtime.of(environment)` is how users, the shape and the event hooks reach it: options,
shape, workload, the backend's API file, the user classes with the workload's weights,
seed, recorder, open-model schedule, GC guard and identity. Nothing lives in a module global,
so two Environments in one process (the unit tests) never share state, and the shared user
classes are never rewritten.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

import gevent
import gevent.event

from velro_perf.scenarios.apifile import load_api
from velro_perf.scenarios.apimodel import ApiFile
from velro_perf.scenarios.args import DEFAULT_WORKLOAD, Options, resolve
from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.generator import GcGuard
from velro_perf.scenarios.identity import IdentitySource
from velro_perf.scenarios.openmodel import DEFAULT_MAX_IN_FLIGHT, OpenModel, SlotRunners
from velro_perf.scenarios.recorder import SampleRecorder
from velro_perf.scenarios.seed import Seed, SeedUser
from velro_perf.scenarios.shapes import Shape, load_shapes
from velro_perf.scenarios.workload import Workload, load_workload

__all__ = ["ATTRIBUTE", "Role", "Runtime", "SeedSource", "SeedStore"]

log = logging.getLogger("velro.scenarios")

# the Environment attribute that holds the runtime
ATTRIBUTE = "velro"


class Role(StrEnum):
    """What this process is in a Locust run."""

    LOCAL = "local"  # one process: generates load and writes the run files
    MASTER = "master"  # distributes the seed and writes what its workers report
    WORKER = "worker"  # generates load and reports to the master

    @property
    def generates(self) -> bool:
        return self is not Role.MASTER

    @property
    def writes(self) -> bool:
        return self is not Role.WORKER


class SeedSource:
    """A seed and a never-ending walk over its users."""

    def __init__(self, seed: Seed) -> None:
        self.seed = seed
        # a random starting point: processes do not all begin with the same seed user
        start = random.randrange(len(seed.users))
        self._cycle: Iterator[SeedUser] = itertools.cycle(seed.users[start:] + seed.users[:start])

    def next_user(self) -> SeedUser:
        return next(self._cycle)


class SeedStore:
    """The seed, once loaded, provisioned or received; users wait for it in on_start."""

    def __init__(self) -> None:
        self._ready = gevent.event.Event()
        self.source: SeedSource | None = None
        # what the seed was made for (host, fixtures): a second test on the same reuses it
        self.key: tuple[str, str] | None = None
        self.error: str | None = None

    def set(self, seed: Seed, key: tuple[str, str] | None = None) -> None:
        self.source = SeedSource(seed)
        self.key = key
        self.error = None
        self._ready.set()

    def fail(self, error: str) -> None:
        """No seed will come: waiting users give up at once."""
        self.source = None
        self.key = None
        self.error = error
        self._ready.set()

    def clear(self) -> None:
        self.source = None
        self.key = None
        self._ready.clear()

    def wait(self, timeout: float) -> SeedSource | None:
        self._ready.wait(timeout)
        return self.source


def _user_classes(workload: Workload, classes: Mapping[str, type[Any]]) -> list[type[Any]]:
    """A subclass of each enabled user class carrying the workload's weight, same name.

    Locust dispatches users to workers by class name, so the names stay; the shared classes
    of scenarios.users keep their own attributes (another Environment may weigh them
    differently)."""
    weighed = []
    for category, base in classes.items():
        mix = workload.users[category]
        if mix.enabled:
            weighed.append(
                type(
                    base.__name__,
                    (base,),
                    {
                        "weight": mix.weight,
                        "fixed_count": mix.fixed_count,
                        "__module__": base.__module__,
                        "__doc__": base.__doc__,
                    },
                )
            )
    return weighed


@dataclass
class Runtime:
    """The scenario state of one Environment."""

    options: Options
    shape: Shape
    workload: Workload
    workload_file: Path
    role: Role
    # the backend's API file (targets/contract.toml unless --velro-api says otherwise)
    api: ApiFile
    seeds: SeedStore = field(default_factory=SeedStore)
    recorder: SampleRecorder = field(default_factory=SampleRecorder)
    open_model: OpenModel = field(default_factory=OpenModel)
    gc: GcGuard = field(default_factory=GcGuard)
    identity: IdentitySource = field(default_factory=IdentitySource)
    # what each generating process reported (master), or this process's own (local)
    open_reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    gc_reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the open model's requests in flight (each in a greenlet of its own), bounded
    in_flight: SlotRunners = field(default_factory=lambda: SlotRunners(DEFAULT_MAX_IN_FLIGHT))
    _retired: set[str] = field(default_factory=set)

    @classmethod
    def build(cls, options: Options, role: Role) -> Runtime:
        """Read the shapes and workload files the options name; raises ScenarioConfigError."""
        shapes = load_shapes(options.shapes_file)
        if options.shape not in shapes:
            raise ScenarioConfigError(
                f"--velro-shape is {options.shape!r}, not defined in {str(options.shapes_file)!r}; "
                f"use one of {sorted(shapes)}"
            )
        shape = shapes[options.shape]
        if options.seed is not None:
            users, teams, projects = options.seed
            shape = replace(shape, seed_users=users, seed_teams=teams, seed_projects=projects)
        workload_file = (
            options.workload_file
            or shape.workload_file(options.shapes_file)
            or resolve(DEFAULT_WORKLOAD)
        )
        runtime = cls(
            options=options,
            shape=shape,
            workload=load_workload(workload_file),
            workload_file=workload_file,
            role=role,
            api=load_api(options.api_file),
        )
        runtime.recorder.configure(options.out, writes=role.writes, mode=options.samples)
        runtime.gc.rss_limit_mb = options.gc_rss_limit_mb
        runtime.in_flight = SlotRunners(options.open_max_in_flight)
        runtime.open_model.max_in_flight = options.open_max_in_flight
        runtime.open_model.late_s = options.open_late_s
        return runtime

    def with_options(self, options: Options) -> Runtime:
        """The runtime for other options (a worker learns the master's at its first spawn),
        keeping what this process did and knows: identity, GC guard, seed, reports."""
        fresh = Runtime.build(options, self.role)
        fresh.identity = self.identity
        fresh.gc = self.gc
        fresh.gc.rss_limit_mb = options.gc_rss_limit_mb
        fresh.open_model = self.open_model
        fresh.open_model.max_in_flight = options.open_max_in_flight
        fresh.open_model.late_s = options.open_late_s
        fresh.seeds = self.seeds
        fresh.open_reports = self.open_reports
        fresh.gc_reports = self.gc_reports
        return fresh

    def attach(self, environment: Any) -> None:
        setattr(environment, ATTRIBUTE, self)

    @staticmethod
    def of(environment: Any) -> Runtime:
        """The runtime attached to `environment`; ScenarioConfigError when there is none."""
        runtime = getattr(environment, ATTRIBUTE, None)
        if not isinstance(runtime, Runtime):
            raise ScenarioConfigError(
                "this Locust Environment has no velro runtime; run the users through "
                "locustfile.py (or call scenarios.hooks.setup(environment) in a test)"
            )
        return runtime

    def user_classes(self, classes: Mapping[str, type[Any]]) -> list[type[Any]]:
        """The enabled user classes weighed by the workload (see _user_classes)."""
        return _user_classes(self.workload, classes)

    def wait_s(self) -> float:
        low, high = self.shape.wait_s
        return random.uniform(low, high)

    def retire(self, reason: str) -> NoReturn:
        """End the calling user quietly: the reason is logged once per process.

        GreenletExit ends User.run through its normal path (on_stop) without the traceback
        Locust logs for a StopUser raised in on_start."""
        if reason not in self._retired:
            self._retired.add(reason)
            log.error("stopping users: %s", reason)
        raise gevent.GreenletExit

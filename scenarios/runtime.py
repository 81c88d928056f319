"""The process-wide state the users and event hooks share: options, shape, workload, API
file, seed, recorder, open-model schedule and GC guard. Configured from Locust's parsed
options at init and again at test start (a worker learns the master's options only with its
first spawn)."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent.event

from scenarios.apifile import ApiFile, load_api
from scenarios.args import DEFAULT_WORKLOAD, Options, resolve
from scenarios.errors import ScenarioConfigError
from scenarios.generator import GcGuard
from scenarios.openmodel import OpenModel
from scenarios.recorder import SampleRecorder
from scenarios.seed import Seed, SeedUser
from scenarios.shapes import Shape, load_shapes
from scenarios.workload import Workload, load_workload

__all__ = ["Runtime", "SeedStore", "runtime"]


class SeedStore:
    """The seed, once loaded or provisioned; users wait for it in on_start."""

    def __init__(self) -> None:
        self._ready = gevent.event.Event()
        self.seed: Seed | None = None
        self._cycle: Iterator[SeedUser] | None = None

    def set(self, seed: Seed) -> None:
        self.seed = seed
        # a random starting point: processes do not all begin with the same seed user
        start = random.randrange(len(seed.users))
        self._cycle = itertools.cycle(seed.users[start:] + seed.users[:start])
        self._ready.set()

    def fail(self) -> None:
        """No seed will come: waiting users give up at once."""
        self.seed = None
        self._cycle = None
        self._ready.set()

    def clear(self) -> None:
        self.seed = None
        self._cycle = None
        self._ready.clear()

    def wait(self, timeout: float) -> Seed | None:
        self._ready.wait(timeout)
        return self.seed

    def next_user(self) -> SeedUser:
        assert self._cycle is not None, "seed not ready"
        return next(self._cycle)


class Runtime:
    def __init__(self) -> None:
        self.options: Options | None = None
        self.shape: Shape | None = None
        self.workload: Workload | None = None
        self.workload_file: Path | None = None
        self.api: ApiFile | None = None
        self.seeds = SeedStore()
        self.recorder = SampleRecorder()
        self.open_model = OpenModel()
        self.gc = GcGuard()
        self.processes = 1

    def configure(self, parsed_options: Any) -> None:
        """Read options and the shapes/workload files; raises ScenarioConfigError."""
        options = Options.from_parsed(parsed_options)
        shapes = load_shapes(options.shapes_file)
        if options.shape not in shapes:
            raise ScenarioConfigError(
                f"--velro-shape is {options.shape!r}, not defined in {str(options.shapes_file)!r}; "
                f"use one of {sorted(shapes)}"
            )
        self.options = options
        self.shape = shapes[options.shape]
        self.workload_file = (
            options.workload_file
            or self.shape.workload_file(options.shapes_file)
            or resolve(DEFAULT_WORKLOAD)
        )
        self.workload = load_workload(self.workload_file)
        self.api = load_api(options.api_file)
        self.gc.rss_limit_mb = options.gc_rss_limit_mb

    def wait_s(self) -> float:
        low, high = self.shape.wait_s if self.shape else (1.0, 3.0)
        return random.uniform(low, high)

    def now(self) -> float:
        return time.time()


runtime = Runtime()

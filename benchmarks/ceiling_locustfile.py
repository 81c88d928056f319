"""Locust workers that ship synthetic samples at a set rate, for benchmarks/master_ceiling.py.

The suite's own hooks are installed (scenarios.hooks: the report channel, the recorder, the
master's writer); the only user is a Shipper, which sends no HTTP: each one records
VELRO_SHIP_RATE rows a second into its process's recorder, with `ts` = the time it recorded
them, so the master's lag is the age of a row when its part reaches the disk.
"""

from __future__ import annotations

from locust import User, constant, task

import os
import time

import gevent

from scenarios.hooks import install
from scenarios.runtime import Runtime

__all__ = ["Shipper"]

install()

TICK_S = 0.05
ENDPOINTS = ("GET /api/v1/auth/me", "GET /api/v1/authz/check", "POST /api/v1/auth/login")
TIMING = 'app;dur=1.25, db;dur=0.4, cache;desc="L1"'


class Shipper(User):
    """Records VELRO_SHIP_RATE synthetic rows a second (in TICK_S batches)."""

    wait_time = constant(0)

    @task
    def ship(self) -> None:
        recorder = Runtime.of(self.environment).recorder
        per_tick = float(os.environ.get("VELRO_SHIP_RATE", "1000")) * TICK_S
        owed = 0.0
        next_tick = time.monotonic()
        i = 0
        while True:
            owed += per_tick
            now = time.time()
            while owed >= 1.0:
                i += 1
                recorder.record(
                    now, ENDPOINTS[i % 3], "authentication", 1.0 + (i % 997) / 100.0, 200, True,
                    TIMING,
                )  # fmt: skip
                owed -= 1.0
            next_tick += TICK_S
            gevent.sleep(max(0.0, next_tick - time.monotonic()))

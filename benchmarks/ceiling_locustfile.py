"""Locust workers that ship synthetic samples at a set rate, for benchmarks/master_ceiling.py.

The suite's own hooks are installed (scenarios.hooks: the report channel, the recorder, the
master's writer); the only user is a Shipper, which sends no HTTP. With VELRO_SHIP_MODE=record
each one records VELRO_SHIP_RATE rows a second into its process's recorder, one call a row as
scenarios.http does, with `ts` = the time it recorded them (the master's lag is the age of a
row when its part reaches the disk). With VELRO_SHIP_MODE=arrow the rows are built with
pyarrow at each report instead (the same Arrow batch the recorder would encode, `ts` = now):
the workers then cost next to nothing, so two cores can offer the master far more rows than
Python code recording them one by one could, which is what finding its ceiling needs.
"""

from __future__ import annotations

from locust import User, constant, events, task

import os
import time
from typing import Any

import gevent
import numpy as np
import pyarrow as pa

from velro_perf.reports.samplefiles import table_of
from velro_perf.scenarios.hooks import install
from velro_perf.scenarios.recorder import ROW_COLUMNS
from velro_perf.scenarios.runtime import Runtime

__all__ = ["Shipper"]

install()
ARROW = os.environ.get("VELRO_SHIP_MODE", "record") == "arrow"
RATE = float(os.environ.get("VELRO_SHIP_RATE", "1000"))

TICK_S = 0.05
ENDPOINTS = ("GET /api/v1/auth/me", "GET /api/v1/authz/check", "POST /api/v1/auth/login")
TIMING = 'app;dur=1.25, db;dur=0.4, cache;desc="L1"'


class Shipper(User):
    """Records VELRO_SHIP_RATE synthetic rows a second (in TICK_S batches)."""

    wait_time = constant(0)

    @task
    def ship(self) -> None:
        if ARROW:  # the rows are built at each report (_arrow_batch)
            gevent.sleep(3600)
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


class _ArrowBatches:
    """VELRO_SHIP_MODE=arrow: at each report, the rows owed since the last one."""

    def __init__(self) -> None:
        self.last = time.time()
        n = int(RATE * 10)
        self.template = table_of(
            [
                np.zeros(n).tolist(),
                [ENDPOINTS[i % 3] for i in range(n)],
                ["authentication"] * n,
                (1.0 + (np.arange(n) % 997) / 100.0).tolist(),
                [200] * n,
                [1] * n,
                [1.25] * n,
                [0.4] * n,
                [None] * n,
                ["L1"] * n,
            ],
            ROW_COLUMNS,
        )

    def __call__(self, client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
        now = time.time()
        n = min(int(RATE * (now - self.last)), self.template.num_rows)
        self.last = now
        table = self.template.slice(0, n)
        table = table.set_column(0, "ts", pa.array(np.full(n, now)))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        data["velro_samples"] = sink.getvalue().to_pybytes()


def _replace_rows(environment: Any, **_kwargs: Any) -> None:
    # registered after the suite's own init listener (install() above), so this report
    # listener runs after the suite's and replaces its (empty) batch
    if ARROW and type(environment.runner).__name__ == "WorkerRunner":
        environment.events.report_to_master.add_listener(_ArrowBatches())


events.init.add_listener(_replace_rows)  # type: ignore[no-untyped-call]

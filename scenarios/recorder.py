"""Exact recording: every request as one row of <out>/samples.csv (docs/run-format.md).

Locust's own statistics round response times into buckets; the gate needs the exact
figures. scenarios.http records one row per request it sends. Workers hand their rows
to the master through Locust's reporting channel (`events.report_to_master`, every 3 s and
once more on quit); the master appends each batch on `events.worker_report`. A
non-distributed process writes its own rows. The file is appended and flushed every couple
of seconds, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import gevent
import gevent.lock

from scenarios.servertiming import parse_server_timing

__all__ = ["COLUMNS", "SampleRecorder"]

COLUMNS = (
    "ts",
    "endpoint",
    "category",
    "latency_ms",
    "status",
    "expected",
    "worker",
    "st_app",
    "st_db",
    "st_hash",
    "st_cache",
)
SAMPLES_KEY = "velro_samples"
CHUNK_ROWS = 100  # about 1.5 ms of formatting between two yields to the loop

# a row as it travels from a worker: every column but `worker`, which the writer adds
Row = list[Any]


class SampleRecorder:
    """Buffers request rows and writes them to samples.csv."""

    def __init__(self) -> None:
        self.enabled = False
        self.path: Path | None = None
        self._rows: list[Row] = []
        self._lock = gevent.lock.RLock()

    def configure(self, out_dir: str | None, *, writes: bool) -> None:
        """Record when an out dir is given; `writes` is False on workers, whose rows go to
        the master instead of a file."""
        self.enabled = bool(out_dir)
        self.path = Path(out_dir) / "samples.csv" if out_dir and writes else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def record(
        self,
        ts: float,
        endpoint: str,
        category: str,
        latency_ms: float,
        status: int,
        expected: bool,
        server_timing: str | None,
    ) -> None:
        """One request: `ts` its start (the intended start in the open model), `endpoint`
        "METHOD name", the raw Server-Timing header (parsed here, once per request)."""
        if not self.enabled:
            return
        timing = parse_server_timing(server_timing)
        self._rows.append(
            [
                ts,
                endpoint,
                category,
                latency_ms,
                status,
                1 if expected else 0,
                timing.app,
                timing.db,
                timing.hash,
                timing.cache,
            ]
        )

    def take(self) -> list[Row]:
        rows, self._rows = self._rows, []
        return rows

    def write(self, rows: list[Row], worker: str) -> None:
        """Append rows (from this process or from a worker's report) and flush them to disk.

        The process that writes may also be sending requests (one local process): 800 rows
        (2 s at 400 requests/s) take about 12 ms to format here, which every response that
        came meanwhile would wait for and have in its latency. The rows go out in chunks of
        CHUNK_ROWS with a yield to the loop between them, and fsync runs in gevent's thread
        pool; a lock keeps two writers (the flusher, a worker's report) from interleaving."""
        if self.path is None or not rows:
            return
        with self._lock:
            new_file = not self.path.exists() or self.path.stat().st_size == 0
            with self.path.open("a", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                if new_file:
                    writer.writerow(COLUMNS)
                for start in range(0, len(rows), CHUNK_ROWS):
                    if start:
                        gevent.sleep(0)
                    # repr-exact floats: csv writes str(float), which round-trips in Python 3
                    writer.writerows(
                        [*row[:6], worker, *("" if value is None else value for value in row[6:])]
                        for row in rows[start : start + CHUNK_ROWS]
                    )
                handle.flush()
                gevent.get_hub().threadpool.apply(os.fsync, (handle.fileno(),))

    def flush(self, worker: str) -> None:
        self.write(self.take(), worker)

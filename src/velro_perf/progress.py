"""Follow Locust's stats history CSV as it grows, and print one progress line every few seconds.

Locust appends a row per endpoint plus an "Aggregated" row to `<run>/locust_stats_history.csv`
every second (flushed every 10 s by Locust), so the tail of that file is the generator's view
of the run: users, total requests, current requests per second and failures.
"""

from __future__ import annotations

import csv
import io
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

__all__ = ["LocustStats", "StatsHistoryTail", "format_progress", "print_progress"]


@dataclass(frozen=True)
class LocustStats:
    """The newest Aggregated row of the stats history."""

    ts: float
    users: int
    rps: float
    failures_per_s: float
    requests: int
    failures: int


class StatsHistoryTail:
    """Reads only the new complete lines of the history CSV on each `latest()` call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._header: list[str] | None = None
        self._latest: LocustStats | None = None
        self._lock = threading.Lock()

    def latest(self) -> LocustStats | None:
        with self._lock:
            self._read_new()
            return self._latest

    def _read_new(self) -> None:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n")
        if end < 0:
            return  # no complete line yet
        self._offset += end + 1
        text = chunk[: end + 1].decode("utf-8", errors="replace")
        for row in csv.reader(io.StringIO(text)):
            if self._header is None:
                self._header = row
                continue
            parsed = self._parse(row)
            if parsed is not None:
                self._latest = parsed

    def _parse(self, row: list[str]) -> LocustStats | None:
        assert self._header is not None
        record = dict(zip(self._header, row, strict=False))
        if record.get("Name") != "Aggregated":
            return None
        try:
            return LocustStats(
                ts=float(record["Timestamp"]),
                users=int(float(record["User Count"])),
                rps=float(record["Requests/s"]),
                failures_per_s=float(record["Failures/s"]),
                requests=int(float(record["Total Request Count"])),
                failures=int(float(record["Total Failure Count"])),
            )
        except (KeyError, ValueError):
            return None


def format_progress(
    elapsed_s: float,
    total_s: float | None,
    stats: LocustStats | None,
    generator_cpu: float | None,
) -> str:
    total = f"{total_s:.0f}" if total_s else "?"
    parts = [f"[{elapsed_s:5.0f}/{total} s]"]
    if stats is None:
        parts.append("waiting for Locust's first statistics")
    else:
        share = 100.0 * stats.failures / stats.requests if stats.requests else 0.0
        parts += [
            f"users {stats.users}",
            f"requests {stats.requests}",
            f"rps {stats.rps:.1f}",
            f"failures {stats.failures} ({share:.2f} %)",
        ]
    if generator_cpu is not None:
        parts.append(f"generator CPU {generator_cpu:.0f} %")
    return "  ".join(parts)


def print_progress(line: str, stream: TextIO | None = None) -> None:
    out = stream or sys.stderr
    out.write(line + "\n")
    out.flush()

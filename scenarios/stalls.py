"""The generator's own stalls: when a Locust process could not run, its requests' clocks ran on.

A process that is stopped (SIGSTOP, a swap storm, a noisy neighbour, a long GC pause) or that
runs one greenlet without yielding sends nothing and reads nothing for that time, and every
request it had in flight is measured that much longer: the generator's stall is booked as the
target's latency. Each Locust process (master, worker, the single local one) therefore watches
its own event loop, as the reference service's admission gate watches its asyncio loop
(src/velro/admission.py): a gevent timer that should fire every INTERVAL_S notes how late it
fires. A lateness over STALL_S is a stall, kept with when it ended and how long it lasted;
workers hand theirs to the master with their samples (`events.report_to_master`), and the
master writes all of them, its own too, to generator_health.json (`stalls`).

The master also notes, from `events.heartbeat_sent` (Locust fires it when a worker's 1-s
heartbeat arrives), each gap between two heartbeats of a worker that is STALL_S longer than
the heartbeat interval: a worker that stops and never comes back to report its own stall still
leaves one (`heartbeat_gaps`).

Why STALL_S = 0.1 s. The loop of a loaded worker on this machine's two shared cores runs late
by a few milliseconds at p99 and by tens of milliseconds now and then (the kernel's time slices
are 3-24 ms, and a greenlet handling a response runs a millisecond or so without yielding); a
bound of that order would call scheduling noise a stall and drop good requests. At 0.1 s a stall
is as long as the authentication p99 budget of fixtures/budgets.toml and longer than the
authentication and authorization p95 budgets (50 and 75 ms): a request in flight across it
would be judged slow for the generator's sake. The lateness is counted in buckets
(`lag_counts`), so that every run shows how its loops fared below the bound too.
"""

from __future__ import annotations

import time
from typing import Any

import gevent

from velro_perf.reports.runfiles import LoopReport, StallRecord

__all__ = [
    "INTERVAL_S",
    "LAG_BUCKETS_S",
    "STALL_S",
    "HeartbeatGaps",
    "LoopWatch",
]

INTERVAL_S = 0.02  # how often the timer should fire: 50 switches a second, a few us each
STALL_S = 0.1  # a lateness over this is a stall (see the module's docstring for why)
# lateness counted per bucket (seconds, lower bounds): the run's record of the loop's health
LAG_BUCKETS_S = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0)


class LoopWatch:
    """Watches this process's gevent loop; `take()` hands over the stalls seen since the last
    call, `report()` describes the loop's lateness since `start()`."""

    def __init__(self, interval_s: float = INTERVAL_S, stall_s: float = STALL_S) -> None:
        self.interval_s = interval_s
        self.stall_s = stall_s
        self.ticks = 0
        self.max_lag_s = 0.0
        self.lag_counts = [0] * len(LAG_BUCKETS_S)
        self.stalls: list[dict[str, float]] = []  # every stall since start()
        self._handed = 0  # stalls already taken
        self._greenlet: gevent.Greenlet[Any, Any] | None = None

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._watch)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _watch(self) -> None:
        interval = self.interval_s
        while True:
            due = time.monotonic() + interval
            gevent.sleep(interval)
            self.note(time.monotonic() - due, time.time())

    def note(self, lag_s: float, now: float) -> None:
        """The timer was due `lag_s` before `now` (epoch seconds)."""
        lag_s = max(0.0, lag_s)
        self.ticks += 1
        self.max_lag_s = max(self.max_lag_s, lag_s)
        bucket = 0
        while bucket + 1 < len(LAG_BUCKETS_S) and lag_s >= LAG_BUCKETS_S[bucket + 1]:
            bucket += 1
        self.lag_counts[bucket] += 1
        if lag_s > self.stall_s:
            # the loop last ran at most one interval before the timer was due: the stall
            # began between (due - interval) and due; `start` is the due time, the analysis
            # widens it by `interval_s` (reports/stalls.py)
            self.stalls.append({"start": now - lag_s, "length_s": lag_s})

    def take(self) -> list[dict[str, float]]:
        new = self.stalls[self._handed :]
        self._handed = len(self.stalls)
        return new

    def report(self) -> LoopReport:
        return {
            "interval_s": self.interval_s,
            "stall_s": self.stall_s,
            "ticks": self.ticks,
            "max_lag_s": round(self.max_lag_s, 4),
            "lag_counts": dict(
                zip((f"{b:g}" for b in LAG_BUCKETS_S), self.lag_counts, strict=True)
            ),
        }


class HeartbeatGaps:
    """The master's view: gaps between a worker's heartbeats longer than interval + STALL_S."""

    def __init__(self, interval_s: float, stall_s: float = STALL_S) -> None:
        self.interval_s = interval_s
        self.stall_s = stall_s
        self.gaps: list[StallRecord] = []
        self._last: dict[str, float] = {}

    def beat(self, worker: str, now: float) -> None:
        last = self._last.get(worker)
        self._last[worker] = now
        if last is None:
            return
        late = now - last - self.interval_s
        if late > self.stall_s:
            # the beat was due one interval after the last; it came `late` after that
            self.gaps.append({"worker": worker, "start": last + self.interval_s, "length_s": late})

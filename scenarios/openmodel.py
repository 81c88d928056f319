"""Open-model pacing: requests start on a schedule, not when the previous one finished.

In the closed model a slow answer delays the next request, so a stall hides the requests
that should have been sent during it (coordinated omission; Gil Tene, "How NOT to Measure
Latency"). Here every request gets an intended start on a fixed-rate schedule, and its
latency is counted from that intended start, as wrk2 does.

The schedule is kept whatever the latency: a user does not wait for its answer before it
takes its next slot; each slot's request runs in a greenlet of SlotRunners, a pool that grows
as needed up to `max_in_flight` per process (k6's constant-arrival-rate grows its VUs to
`maxVUs` the same way) and reuses its idle greenlets. Only when the pool is full does a start
slip. A request that starts more than
`late_s` after its intended time is counted late (k6 calls such iterations dropped);
reports.analysis makes a run invalid when more than `max_late_share` of them were late. Every
second of the schedule keeps its intended and its actual starts, for open_model.json and the
report.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
from gevent.hub import Waiter, get_hub
from gevent.lock import BoundedSemaphore

from velro_perf.reports.runfiles import OpenModelFile

__all__ = [
    "DEFAULT_LATE_S",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_MAX_LATE_SHARE",
    "OpenModel",
    "SlotRunners",
    "combine_reports",
]

log = logging.getLogger("velro.scenarios")

DEFAULT_MAX_IN_FLIGHT = 1000  # requests in flight at once, per generating process
DEFAULT_LATE_S = 0.1  # a start this much after its slot is late
DEFAULT_MAX_LATE_SHARE = 0.01  # more late starts than this share: the run is invalid


class SlotRunners:
    """Greenlets that run the open model's slots, at most `size` at once, reused.

    A gevent Pool spawns a Greenlet per slot (with its links and a start callback); on this
    2-core virtual machine that is about 34 us a slot, a tenth of what a request costs the
    generator in all, where handing a slot to an idle runner is one loop callback and one
    switch (about 2 us; both measured with 20,000 empty slots). A runner that finishes a slot
    waits for the next one; the pool only grows when every runner is busy."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._free = BoundedSemaphore(size)
        self._idle: list[Waiter[Any]] = []
        self._loop = get_hub().loop

    def run(self, slot: Callable[[], None]) -> None:
        """Run `slot` in a runner greenlet; blocks the caller while `size` are busy."""
        self._free.acquire()
        if self._idle:
            # Waiter.switch is called from the hub: a loop callback, not a new greenlet
            self._loop.run_callback(self._idle.pop().switch, slot)
        else:
            gevent.spawn_raw(self._runner, slot)

    def _runner(self, slot: Callable[[], None]) -> None:
        waiter: Waiter[Any] = Waiter()
        while True:
            try:
                slot()
            except Exception:
                # as Locust's user loop does for a task: log it, keep running
                log.exception("an open-model slot failed")
            finally:
                self._free.release()
            self._idle.append(waiter)
            slot = waiter.get()

    @property
    def busy(self) -> int:
        return int(self.size - self._free.counter)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until no slot runs (tests); False when `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.busy:
            if deadline is not None and time.monotonic() > deadline:
                return False
            gevent.sleep(0.01)
        return True


@dataclass
class OpenModel:
    """One process's share of the schedule (rate = total rate / processes)."""

    rate: float | None = None
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    late_s: float = DEFAULT_LATE_S
    started_at: float = 0.0
    scheduled: int = 0
    started: int = 0
    completed: int = 0
    late: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    last_completion: float = 0.0
    max_lag_s: float = 0.0
    # The schedule begins at the first claim, when a user is ready to send, not at test
    # start: the users sign in first (setup), and slots that passed while they did would all
    # start late. `start(now=...)` fixes the origin instead.
    origin_at_first_claim: bool = False
    # where the current rate's schedule begins: its first slot and how many came before it
    # (a capacity search changes the rate between steps without restarting the schedule)
    origin: float = 0.0
    origin_scheduled: int = 0
    # second of the schedule -> [intended starts, actual starts]
    per_second: collections.defaultdict[int, list[int]] = field(
        default_factory=lambda: collections.defaultdict(lambda: [0, 0])
    )

    @property
    def active(self) -> bool:
        return self.rate is not None and self.rate > 0

    def start(self, rate: float | None, now: float | None = None) -> None:
        self.rate = rate
        self.started_at = time.time() if now is None else now
        self.origin_at_first_claim = now is None
        self.scheduled = self.started = self.completed = self.late = 0
        self.in_flight = self.peak_in_flight = 0
        self.last_completion = self.started_at
        self.max_lag_s = 0.0
        self.per_second.clear()
        self.origin, self.origin_scheduled = self.started_at, 0

    def retarget(self, rate: float, now: float | None = None) -> None:
        """Go on at another rate from now, counters kept. Slots already claimed keep their
        times; the new schedule does not wait for them (at a trickle, the users' claims reach
        seconds ahead, which would delay the new rate as long), nor does it send the slots a
        schedule that fell behind missed."""
        if not self.rate or rate <= 0:
            return
        self.origin = time.time() if now is None else now
        self.origin_scheduled = self.scheduled
        self.rate = rate

    def claim(self) -> float:
        """The next intended start (epoch seconds); inactive: now. Greenlets never yield in
        here, so two users can not claim the same slot."""
        if not self.rate:
            return time.time()
        if self.scheduled == 0 and self.origin_at_first_claim:
            self.started_at = self.last_completion = self.origin = time.time()
        slot = self.origin + (self.scheduled - self.origin_scheduled) / self.rate
        self.scheduled += 1
        self.per_second[math.floor(slot - self.started_at)][0] += 1
        return slot

    def began(self, intended: float, started: float) -> None:
        """A slot's request was sent at `started`."""
        self.started += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self.per_second[math.floor(started - self.started_at)][1] += 1
        lag = started - intended
        self.max_lag_s = max(self.max_lag_s, lag)
        if lag > self.late_s:
            self.late += 1

    def done(self, finished: float) -> None:
        self.completed += 1
        self.in_flight -= 1
        self.last_completion = max(self.last_completion, finished)

    def report(self) -> dict[str, Any]:
        elapsed = self.last_completion - self.started_at
        return {
            "intended_rps": self.rate,
            "achieved_rps": self.completed / elapsed if elapsed > 0 else 0.0,
            "scheduled": self.scheduled,
            "started": self.started,
            "completed": self.completed,
            "late": self.late,
            "late_s": self.late_s,
            "max_in_flight": self.max_in_flight,
            "peak_in_flight": self.peak_in_flight,
            "started_at": self.started_at,
            "last_completion": self.last_completion,
            "max_start_lag_s": self.max_lag_s,
            "per_second": {str(k): v for k, v in sorted(self.per_second.items())},
            # when these figures were taken: a second's intended starts are booked when its
            # slots are claimed, ahead of time, and its actual starts only as they come
            "written_at": time.time(),
        }


def combine_reports(
    reports: dict[str, dict[str, Any]],
    total_rate: float | None,
    max_late_share: float = DEFAULT_MAX_LATE_SHARE,
) -> OpenModelFile:
    """Add up the per-process reports into the run's figures (for <out>/open_model.json)."""
    # the closed model has no schedule: its rate is whatever the users made (see samples.csv)
    achieved = (
        sum(report.get("achieved_rps") or 0.0 for report in reports.values())
        if total_rate
        else None
    )
    timeline: collections.Counter[int] = collections.Counter()
    actual: collections.Counter[int] = collections.Counter()
    start = min((r.get("started_at") or 0.0 for r in reports.values()), default=0.0)
    for report in reports.values():
        offset = math.floor((report.get("started_at") or start) - start)
        for second, (intended, began) in (report.get("per_second") or {}).items():
            timeline[int(second) + offset] += intended
            actual[int(second) + offset] += began
    started = sum(report.get("started", 0) for report in reports.values())
    late = sum(report.get("late", 0) for report in reports.values())
    return {
        "mode": "open" if total_rate else "closed",
        "intended_rps": total_rate,
        "achieved_rps": achieved,
        "scheduled": sum(report.get("scheduled", 0) for report in reports.values()),
        "started": started,
        "completed": sum(report.get("completed", 0) for report in reports.values()),
        "late": late,
        "late_share": late / started if started else 0.0,
        "late_s": max((r.get("late_s", DEFAULT_LATE_S) for r in reports.values()), default=None),
        "max_late_share": max_late_share,
        "max_in_flight": sum(report.get("max_in_flight", 0) for report in reports.values()),
        "peak_in_flight": sum(report.get("peak_in_flight", 0) for report in reports.values()),
        "max_start_lag_s": max(
            (report.get("max_start_lag_s", 0.0) for report in reports.values()), default=0.0
        ),
        "started_at": start,
        # every process's figures are taken at or after this (its oldest report)
        "covered_until": min(
            (report.get("written_at") or 0.0 for report in reports.values()), default=0.0
        ),
        # second of the run -> [intended starts, actual starts], all processes together
        "timeline": [
            [second, timeline[second], actual[second]]
            for second in sorted(set(timeline) | set(actual))
        ],
        "processes": reports,
        "note": "samples.csv: ts is the intended start and latency is counted from it",
    }

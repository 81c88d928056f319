"""The generator's own health, as Locust's master sees it: workers lost and users overshot.

Every second the master (or the single local process) looks at Locust's worker states and the
user count against the shape's target, and keeps what went wrong, with when and how much, for
<out>/generator_health.json; reports.analysis makes the run invalid on it:

- a worker marked `missing` (Locust's heartbeats: `HEARTBEAT_LIVENESS` missed beats of
  `HEARTBEAT_INTERVAL` seconds). The master hands its users to the other workers while it may
  well still run them, so the load is no longer the shape's;
- more users than the shape asks for during more than OVERSHOOT_S seconds in a row (the most
  the shape asked for in the last OVERSHOOT_S seconds, so that users still stopping after a
  step down are not counted).

It also keeps the generator's stalls (scenarios/stalls.py): each process's own (`stalls`, with
the process: a worker's client id, `master` or `local`), the gaps between a worker's
heartbeats (`heartbeat_gaps`), and each process's loop lateness (`loops`).

Locust's tolerance is raised before it is needed: on this machine the service shares the
cores with the generator, and a worker starved of CPU for 3 s (Locust's default) is not dead.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

from velro_perf.reports.runfiles import HealthEvent, LoopReport, StallRecord, WorkerHealth
from velro_perf.scenarios.stalls import INTERVAL_S, STALL_S

__all__ = ["OVERSHOOT_S", "GeneratorHealth", "set_heartbeat_liveness"]

OVERSHOOT_S = 5.0
STATE_MISSING = "missing"  # locust.runners.STATE_MISSING


def set_heartbeat_liveness(beats: int) -> WorkerHealth:
    """Locust's master marks a worker missing after this many missed heartbeats."""
    from locust import runners

    runners.HEARTBEAT_LIVENESS = beats
    return {"heartbeat_liveness": beats, "heartbeat_interval_s": runners.HEARTBEAT_INTERVAL}


class GeneratorHealth:
    """Samples `runner` every second (call `tick`); `report()` is generator_health.json."""

    def __init__(
        self, runner: Any, target: Callable[[], int | None], settings: WorkerHealth
    ) -> None:
        self.runner = runner
        self.target = target  # the shape's user count now, None before and after its stages
        self.settings = settings
        self.events: list[HealthEvent] = []
        self.max_users = 0
        self._missing: set[str] = set()
        self._targets: collections.deque[tuple[float, int]] = collections.deque()
        self._over_since: float | None = None
        self._over: HealthEvent | None = None
        self.stalls: list[StallRecord] = []
        self.loops: dict[str, LoopReport] = {}
        self.heartbeat_gaps: list[StallRecord] = []

    def add_stalls(self, worker: str, stalls: list[dict[str, float]], loop: LoopReport) -> None:
        """A process's new stalls (LoopWatch.take) and its loop's lateness (LoopWatch.report)."""
        self.stalls.extend(
            {"worker": worker, "start": stall["start"], "length_s": stall["length_s"]}
            for stall in stalls
        )
        self.loops[worker] = loop

    def tick(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._workers(now)
        self._users(now)

    def _workers(self, now: float) -> None:
        clients = getattr(self.runner, "clients", None)
        if clients is None:
            return
        for worker in list(clients.values()):
            if worker.state == STATE_MISSING and worker.id not in self._missing:
                self._missing.add(worker.id)
                self.events.append(
                    {
                        "kind": "worker_missing",
                        "ts": now,
                        "worker": worker.id,
                        "workers": len(clients),
                        "users": self.runner.user_count,
                    }
                )
            elif worker.state != STATE_MISSING and worker.id in self._missing:
                self._missing.discard(worker.id)
                self.events.append({"kind": "worker_back", "ts": now, "worker": worker.id})

    def _users(self, now: float) -> None:
        users = int(self.runner.user_count)
        self.max_users = max(self.max_users, users)
        target = self.target()
        if target is not None:
            self._targets.append((now, target))
        while self._targets and now - self._targets[0][0] > OVERSHOOT_S:
            self._targets.popleft()
        allowed = max((t for _, t in self._targets), default=None)
        if allowed is None or users <= allowed:
            self._over_since = None
            self._over = None
            return
        if self._over_since is None:
            self._over_since = now
        if now - self._over_since < OVERSHOOT_S:
            return
        if self._over is None:
            self._over = {"kind": "overshoot", "ts": self._over_since, "shape_users": allowed}
            self.events.append(self._over)
        self._over["max_users"] = max(self._over.get("max_users", 0), users)
        self._over["until"] = now
        self._over["duration_s"] = round(now - self._over_since, 1)

    def report(self) -> WorkerHealth:
        return {
            **self.settings,
            "overshoot_s": OVERSHOOT_S,
            "stall_s": STALL_S,
            "stall_interval_s": INTERVAL_S,
            "max_users": self.max_users,
            "events": self.events,
            "stalls": sorted(self.stalls, key=lambda stall: stall["start"]),
            "heartbeat_gaps": self.heartbeat_gaps,
            "loops": self.loops,
        }

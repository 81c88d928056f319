"""Open-model pacing: requests start on a schedule, not when the previous one finished.

In the closed model a slow answer delays the next request, so a stall hides the requests
that should have been sent during it (coordinated omission; Gil Tene, "How NOT to Measure
Latency"). Here every request gets an intended start on a fixed-rate schedule; a request that
starts late has its latency counted from the intended start, as wrk2 does. Concurrency stays
bounded by the number of Locust users, and the achieved rate is reported beside the
intended one, so a generator that could not keep up shows it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = ["OpenModel", "combine_reports"]


@dataclass
class OpenModel:
    """One process's share of the schedule (rate = total rate / processes)."""

    rate: float | None = None
    started_at: float = 0.0
    scheduled: int = 0
    completed: int = 0
    last_completion: float = 0.0
    max_lag_s: float = 0.0

    @property
    def active(self) -> bool:
        return self.rate is not None and self.rate > 0

    def start(self, rate: float | None, now: float | None = None) -> None:
        self.rate = rate
        self.started_at = time.time() if now is None else now
        self.scheduled = self.completed = 0
        self.last_completion = self.started_at
        self.max_lag_s = 0.0

    def claim(self) -> float:
        """The next intended start (epoch seconds). Greenlets never yield in here, so two
        users can not claim the same slot."""
        assert self.rate
        slot = self.started_at + self.scheduled / self.rate
        self.scheduled += 1
        return slot

    def done(self, intended: float, started: float, finished: float) -> None:
        self.completed += 1
        self.last_completion = max(self.last_completion, finished)
        self.max_lag_s = max(self.max_lag_s, started - intended)

    def report(self) -> dict[str, Any]:
        elapsed = self.last_completion - self.started_at
        return {
            "intended_rps": self.rate,
            "achieved_rps": self.completed / elapsed if elapsed > 0 else 0.0,
            "scheduled": self.scheduled,
            "completed": self.completed,
            "started_at": self.started_at,
            "last_completion": self.last_completion,
            "max_start_lag_s": self.max_lag_s,
        }


def combine_reports(reports: dict[str, dict[str, Any]], total_rate: float | None) -> dict[str, Any]:
    """Add up the per-process reports into the run's figures (for <out>/open_model.json)."""
    # the closed model has no schedule: its rate is whatever the users made (see samples.csv)
    achieved = (
        sum(report.get("achieved_rps") or 0.0 for report in reports.values())
        if total_rate
        else None
    )
    return {
        "mode": "open" if total_rate else "closed",
        "intended_rps": total_rate,
        "achieved_rps": achieved,
        "scheduled": sum(report.get("scheduled", 0) for report in reports.values()),
        "completed": sum(report.get("completed", 0) for report in reports.values()),
        "max_start_lag_s": max(
            (report.get("max_start_lag_s", 0.0) for report in reports.values()), default=0.0
        ),
        "processes": reports,
        "note": "samples.csv: ts is the intended start and latency is counted from it",
    }

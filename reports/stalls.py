"""The generator's stalls in the analysis: which requests were in flight across one, and
whether a run with stalls can be judged at all.

generator_health.json (scenarios/stalls.py) lists each process's own stalls (its event loop
ran late by more than `stall_s`) and the gaps between a worker's heartbeats the master saw.
A heartbeat gap is the worker's stall unless the master's own loop stalled across it (then the
master, not the worker, was late to read the beat). A process's stalls are merged into
disjoint intervals; a loop stall is widened by one timer interval at its start, since the loop
last ran up to one interval before the timer was due.

Requests in flight across a stall, those of the same process (`worker` of samples.csv) whose
[ts, ts + latency] overlaps one of its stalls, are excluded from the judged figures and
counted. Not judged with the stall subtracted: the answer may have come at any moment of the
stall, so how much of the stall is in the measured latency is unknown, anything from all of it
(an answer that came as the stall began) to none of it (one that came as it ended), and a
subtraction would make up a figure. Excluding them leaves the target's figures unbiased as
long as stalls are short and rare, which the two bounds below hold a valid run to.

- MAX_STALL_S = 1.0: one stall longer than Locust's heartbeat interval (1 s) is not a hiccup
  of the generator but a pause of its load: for that long the process sent nothing (the target
  drains its queues and rests), and the open model's catch-up after it is a burst of
  `rate x stall` requests the shape never asked for.
- MAX_STALL_SHARE = 0.01: stalls covering more than 1 % of a process's measured time exclude
  about that share of its requests, as many as the tail a p99 budget describes; past it the
  excluded requests could be the tail being judged. It is the open model's late-start bound
  too (scenarios/openmodel.py, DEFAULT_MAX_LATE_SHARE).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "MAX_STALL_S",
    "MAX_STALL_SHARE",
    "Stall",
    "StallSet",
    "stall_set",
]

MAX_STALL_S = 1.0
MAX_STALL_SHARE = 0.01
MASTER = "master"


@dataclass(frozen=True)
class Stall:
    """One stretch a process could not run: `start` epoch seconds, `length_s` seconds."""

    worker: str
    start: float
    length_s: float
    source: str  # "loop" (the process's own timer), "heartbeat" (the master's view), "both"

    @property
    def end(self) -> float:
        return self.start + self.length_s


@dataclass(frozen=True)
class StallSet:
    """Every process's merged stalls; empty for a run without generator_health.json stalls."""

    stalls: tuple[Stall, ...] = ()
    stall_s: float | None = None  # the detection bound the generator used

    def by_worker(self) -> dict[str, list[Stall]]:
        out: dict[str, list[Stall]] = {}
        for stall in self.stalls:
            out.setdefault(stall.worker, []).append(stall)
        return out

    def in_flight(self, samples: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Which rows of `samples` (ts, latency_ms, worker) were in flight across a stall of
        their own process."""
        mask = np.zeros(len(samples), dtype=bool)
        if not self.stalls or samples.empty or "worker" not in samples:
            return mask
        workers = samples["worker"].astype(str).to_numpy()
        ts = samples["ts"].to_numpy(dtype=np.float64)
        end = ts + samples["latency_ms"].to_numpy(dtype=np.float64) / 1000.0
        for worker, stalls in self.by_worker().items():
            rows = np.flatnonzero(workers == worker)
            if not len(rows):
                continue
            starts = np.array([s.start for s in stalls])
            ends = np.array([s.end for s in stalls])
            # stalls are disjoint and sorted: the first that ends after the request began
            # overlaps it when it starts before the request ended
            i = np.searchsorted(ends, ts[rows], side="right")
            inside = i < len(stalls)
            hit = np.zeros(len(rows), dtype=bool)
            hit[inside] = starts[i[inside]] < end[rows][inside]
            mask[rows] = hit
        return mask

    def within(self, t0: float, t1: float) -> list[Stall]:
        """The stalls that overlap [t0, t1], whole."""
        return [s for s in self.stalls if s.start < t1 and s.end > t0]

    def shares(self, t0: float, t1: float) -> dict[str, float]:
        """Each stalled process's share of [t0, t1] spent in its stalls."""
        if t1 <= t0:
            return {}
        out: dict[str, float] = {}
        for s in self.within(t0, t1):
            covered = min(s.end, t1) - max(s.start, t0)
            out[s.worker] = out.get(s.worker, 0.0) + covered / (t1 - t0)
        return out


def _merge(stalls: Iterable[Stall]) -> list[Stall]:
    """One process's stalls as disjoint intervals, in order."""
    out: list[Stall] = []
    for s in sorted(stalls, key=lambda s: s.start):
        if out and s.start <= out[-1].end:
            last = out[-1]
            end = max(last.end, s.end)
            source = last.source if last.source == s.source else "both"
            out[-1] = Stall(last.worker, last.start, end - last.start, source)
        else:
            out.append(s)
    return out


def stall_set(health: Mapping[str, Any] | None) -> StallSet:
    """The run's stalls from generator_health.json (absent or older files: none)."""
    if not health:
        return StallSet()
    margin = float(health.get("stall_interval_s") or 0.0)
    loops = [
        Stall(str(s["worker"]), float(s["start"]) - margin, float(s["length_s"]) + margin, "loop")
        for s in health.get("stalls") or ()
    ]
    master = [s for s in loops if s.worker == MASTER]
    beats = [
        Stall(str(g["worker"]), float(g["start"]), float(g["length_s"]), "heartbeat")
        for g in health.get("heartbeat_gaps") or ()
    ]
    # a beat late because the master's own loop stalled across it is the master's stall
    beats = [b for b in beats if not any(m.start < b.end and b.start < m.end for m in master)]
    merged: list[Stall] = []
    for worker in sorted({s.worker for s in (*loops, *beats)}):
        merged.extend(_merge(s for s in (*loops, *beats) if s.worker == worker))
    bound = health.get("stall_s")
    return StallSet(tuple(merged), float(bound) if bound is not None else None)

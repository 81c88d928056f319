"""The run in phases: each ramp and hold of the users the generator really ran, with its
figures, and how soon the latency budgets held again after a burst.

Phases are found in the user counts (locust_stats_history.csv, one a second), not taken from
the shape: what the report shows is what the target saw, an overshoot or a lost worker
included. A phase is a hold (the count steady for at least ``MIN_HOLD_S``) or a ramp (it
moves); a hold is cut in two where warm-up ends, so a judged phase holds judged samples only.

After the users fall (a spike's end: Locust stops users at once, so this is often a step
from one hold to the next), ``recovery_s`` is how long from the last second at the high count
until every latency budget's percentile held in each ``RECOVERY_WINDOW_S`` window to the end
of the following hold (point estimates; a window with fewer than ``WINDOW_MIN`` samples of a
budget's endpoints says nothing of it). ``None``: they never held again in that hold.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from velro_perf.reports.loading import RunData
from velro_perf.reports.runfiles import PhaseRow
from velro_perf.reports.samples import SampleStore, SpanStats

__all__ = ["LatencyBound", "phase_rows"]

MIN_HOLD_S = 5.0
RECOVERY_WINDOW_S = 5.0
WINDOW_MIN = 10


@dataclass(frozen=True)
class LatencyBound:
    """One latency budget as this run judges it: its id, endpoints, percentile and bound."""

    id: str
    endpoints: tuple[str, ...]
    percentile: float
    max_ms: float


@dataclass(frozen=True)
class _Span:
    kind: str  # "ramp" or "hold"
    start: float
    end: float
    users_from: int
    users_to: int


def phase_rows(data: RunData, bounds: Sequence[LatencyBound]) -> list[PhaseRow]:
    """One row a phase, in time order; none when the run has no user counts."""
    users = data.locust_history
    if users.empty or not users["users"].notna().any():
        return []
    users = users[["ts", "users"]].dropna().sort_values("ts")
    spans = _split_at(_spans(users), data.measured_from, users)
    store = data.samples
    figures = store.span_stats(
        [(s.start, s.end, i == len(spans) - 1) for i, s in enumerate(spans)],
        [(b.endpoints, b.percentile) for b in bounds],
    )
    rows = [_row(span, f, bounds, data) for span, f in zip(spans, figures, strict=True)]
    for i, (before, span) in enumerate(itertools.pairwise(spans), start=1):
        if span.kind == "hold" and before.users_from > span.users_to:
            # the burst ended where the users began to fall: the last second at the high count
            burst_end = before.start if before.kind == "ramp" else before.end
            rows[i]["recovery_s"] = _recovery_s(store, bounds, burst_end, span.end)
    return rows


def _spans(users: pd.DataFrame) -> list[_Span]:
    """Holds (the count unchanged for MIN_HOLD_S or more) and the ramps between them."""
    ts = users["ts"].to_numpy(dtype=float)
    counts = users["users"].to_numpy(dtype=float).astype(int)
    # runs of one count: [first index, last index]
    breaks = np.flatnonzero(np.diff(counts)) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks - 1, [len(counts) - 1]))
    spans: list[_Span] = []
    for a, b in zip(starts, ends, strict=True):
        held = bool(ts[b] - ts[a] >= MIN_HOLD_S)
        if held:
            if spans and spans[-1].kind == "ramp":
                ramp = spans[-1]
                spans[-1] = _Span("ramp", ramp.start, ts[a], ramp.users_from, int(counts[a]))
            spans.append(_Span("hold", ts[a], ts[b], int(counts[a]), int(counts[a])))
        elif spans and spans[-1].kind == "ramp":
            ramp = spans[-1]
            spans[-1] = _Span("ramp", ramp.start, ts[b], ramp.users_from, int(counts[b]))
        else:
            begin = spans[-1].end if spans else ts[a]
            before = spans[-1].users_to if spans else 0
            spans.append(_Span("ramp", begin, ts[b], before, int(counts[b])))
    return spans


def _split_at(spans: list[_Span], measured_from: float, users: pd.DataFrame) -> list[_Span]:
    """A span that crosses the end of warm-up, as two; the count between them is the last one
    seen by then."""
    out: list[_Span] = []
    for s in spans:
        if s.start < measured_from < s.end:
            seen = users.loc[users["ts"] <= measured_from, "users"]
            at = int(seen.iloc[-1]) if len(seen) else s.users_from
            out.append(_Span(s.kind, s.start, measured_from, s.users_from, at))
            out.append(_Span(s.kind, measured_from, s.end, at, s.users_to))
        else:
            out.append(s)
    return out


def _row(span: _Span, f: SpanStats, bounds: Sequence[LatencyBound], data: RunData) -> PhaseRow:
    duration = max(span.end - span.start, 1e-9)
    name = (
        f"hold {span.users_from:,}"
        if span.kind == "hold"
        else f"ramp {span.users_from:,} to {span.users_to:,}"
    )
    return {
        "name": name,
        "kind": span.kind,
        "start_s": float(span.start - data.measured_from),
        "end_s": float(span.end - data.measured_from),
        "judged": bool(span.start >= data.measured_from),
        "users_from": span.users_from,
        "users_to": span.users_to,
        "requests": f.requests,
        "rps": float(f.requests / duration),
        "unexpected": f.unexpected,
        "refused": f.refused,
        "no_response": f.no_response,
        "sign_ins_refused": f.sign_ins_refused,
        "max_ms": f.max_ms,
        # each budget's percentile as the budgets define it (nearest rank, reports.samples)
        "latency": {b.id: v for b, v in zip(bounds, f.percentiles, strict=True)},
        "recovery_s": None,
    }


def _recovery_s(
    store: SampleStore, bounds: Sequence[LatencyBound], burst_end: float, end: float
) -> float | None:
    """Seconds from the burst's end to the first window after which every window held."""
    between = (burst_end, end)
    windows = store.windows(burst_end, RECOVERY_WINDOW_S, "requests", between)
    if not windows:
        return None
    last = windows[-1]  # the hold's last window: failing there, they never held again
    failing: set[int] = set()
    for b in bounds:
        per_window = store.window_percentiles(
            b.endpoints, b.percentile, burst_end, RECOVERY_WINDOW_S, "requests", between
        )
        failing.update(w for w, (q, n) in per_window.items() if q >= b.max_ms and n >= WINDOW_MIN)
    if not failing:
        return 0.0
    worst = max(failing)
    if worst >= last:
        return None
    return float((worst + 1) * RECOVERY_WINDOW_S)

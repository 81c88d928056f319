"""Whether a run can be judged at all: enough samples, a reachable target, and a load
generator that sent the load it was asked to (docs/run-format.md: an invalid run exits 3):
no process over its CPU limit for a sustained window, no Locust worker lost, no users beyond
the shape's, an open model that kept its schedule, no generator process stalled too long or too
often (reports/stalls.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import numpy as np

from velro_perf.reports.loading import RunData
from velro_perf.reports.runfiles import (
    GeneratorHealth,
    OpenModelFigures,
    StallFigures,
    StallRow,
    WorkerHealth,
)
from velro_perf.reports.stalls import MAX_STALL_S, MAX_STALL_SHARE
from velro_perf.reports.stats import percentiles

__all__ = [
    "CPU_SATURATED",
    "CPU_WINDOW_S",
    "MIN_SAMPLES",
    "UNREACHABLE_SHARE",
    "generator_health",
    "invalid_reasons",
    "measured_duration",
]

CPU_SATURATED = 90.0  # % of one core: above it the generator, not the target, sets the pace
CPU_WINDOW_S = 5  # a generator process whose CPU averages over CPU_SATURATED in this window
MIN_SAMPLES = 100  # fewer judged requests than this cannot bound any percentile we gate on
UNREACHABLE_SHARE = 0.5  # half the requests without any response: the target was not there


def generator_health(data: RunData) -> GeneratorHealth:
    gen = data.generator
    out: GeneratorHealth = {
        "cpu_max": None,
        "cpu_p95": None,
        "saturated": False,
        "saturated_at": None,
        "cpu_window_max": None,
        "cpu_window_s": CPU_WINDOW_S,
        "intended_rps": None,
        "achieved_rps": None,
    }
    if not gen.empty:
        g = gen[gen["ts"] >= data.measured_from]
        busiest = g[["ts", "cpu_percent_max"]].dropna()
        cpu = busiest["cpu_percent_max"].to_numpy(dtype=np.float64)
        if len(cpu):
            out["cpu_max"] = float(cpu.max())
            out["cpu_p95"] = percentiles(np.sort(cpu), (95.0,))[0]
            # a sustained window, not a run-wide percentile: a saturated or starved stretch
            # of a long run does not hide behind its quiet minutes
            window = min(CPU_WINDOW_S, len(cpu))
            means = np.convolve(cpu, np.ones(window) / window, mode="valid")
            worst = int(np.argmax(means))
            out["cpu_window_max"] = float(means[worst])
            if means[worst] > CPU_SATURATED:
                out["saturated"] = True
                out["saturated_at"] = float(busiest["ts"].to_numpy()[worst])
        intended = g["intended_rps"].dropna()
        if len(intended):
            out["intended_rps"] = float(intended.mean())
        achieved = g["achieved_rps"].dropna()
        if len(achieved):
            out["achieved_rps"] = float(achieved.mean())
    if out["achieved_rps"] is None:
        d = measured_duration(data)
        out["achieved_rps"] = (data.judged_totals.n / d) if d else None
    out["health"] = data.health or None
    out["stalls"] = stall_figures(data)
    out["open_model"] = _open_model(data)
    return out


def stall_figures(data: RunData) -> StallFigures:
    """The stalls over the measured time: from the end of warm-up to the last request."""
    t0 = data.measured_from
    last = data.samples.totals("samples").ts_max
    t1 = float(last) if last is not None else t0
    rows: list[StallRow] = [
        {"worker": s.worker, "start": s.start, "length_s": s.length_s, "source": s.source}
        for s in data.stalls.within(t0, t1)
    ]
    return {
        "stall_s": data.stalls.stall_s,
        "max_stall_s": MAX_STALL_S,
        "max_share": MAX_STALL_SHARE,
        "measured_s": max(0.0, t1 - t0),
        "stalls": rows,
        "shares": data.stalls.shares(t0, t1),
        "excluded": data.samples.totals("across_stalls").n,
        "loops": dict(data.health.get("loops") or {}),
    }


def _stall_reasons(stalls: StallFigures, measured_from: float) -> list[str]:
    reasons = []
    for stall in stalls["stalls"]:
        if stall["length_s"] > stalls["max_stall_s"]:
            reasons.append(
                f"Locust process {stall['worker']} stalled at "
                f"{_clock(stall['start'], measured_from)} for {stall['length_s']:.2f} s (seen by "
                f"{_SOURCE[stall['source']]}; at most {stalls['max_stall_s']:g} s may one stall "
                "last): for that long it sent and read nothing, and the requests it had in "
                "flight were timed with its stall in them"
            )
    for worker, share in sorted(stalls["shares"].items()):
        # the master sends no request: its short stalls hide no tail (a long one is above)
        if share > stalls["max_share"] and worker != "master":
            mine = [s for s in stalls["stalls"] if s["worker"] == worker]
            reasons.append(
                f"Locust process {worker} was stalled {share:.1%} of the measured "
                f"{stalls['measured_s']:.0f} s ({len(mine)} stalls over "
                f"{stalls['stall_s'] or 0:g} s, the longest {max(s['length_s'] for s in mine):.2f}"
                f" s from {_clock(max(mine, key=lambda s: s['length_s'])['start'], measured_from)};"
                f" at most {stalls['max_share']:.0%} may be): the requests left out for its "
                "stalls could be the tail being judged"
            )
    return reasons


_SOURCE = {
    "loop": "its own event loop's timer",
    "heartbeat": "the gap between its heartbeats at the master",
    "both": "its own event loop's timer and its heartbeats at the master",
}


def _open_model(data: RunData) -> OpenModelFigures | None:
    """open_model.json's run figures (per-process detail and the timeline left in the file)."""
    loaded = data.open_model
    if loaded is None or loaded.get("mode") != "open":
        return None
    figures = cast(
        OpenModelFigures,
        {k: v for k, v in loaded.items() if k not in ("processes", "timeline", "note")},
    )
    # intended against actual starts, in 10-s steps: what the report shows
    bins: dict[int, list[int]] = {}
    for second, intended, began in loaded.get("timeline", []):
        step = bins.setdefault(int(second) // 10 * 10, [0, 0])
        step[0] += int(intended)
        step[1] += int(began)
    figures["starts_by_10s"] = [[t, *bins[t]] for t in sorted(bins)]
    return figures


def _clock(ts: float, measured_from: float) -> str:
    """A moment of the run as a person finds it in the logs: UTC, and seconds into the run."""
    when = datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")
    return f"{when} UTC ({ts - measured_from:+.0f} s from the measured start)"


def _health_reasons(generator: GeneratorHealth, measured_from: float) -> list[str]:
    health: WorkerHealth = generator.get("health") or {}
    reasons = []
    for event in health.get("events", []):
        if event.get("kind") == "worker_missing":
            reasons.append(
                f"Locust worker {event.get('worker')} went missing at "
                f"{_clock(event['ts'], measured_from)}: no heartbeat for "
                f"{health.get('heartbeat_liveness', '?')} s while {event.get('users')} users "
                "ran; the master handed its users to the others while it may have kept "
                "running them"
            )
        elif event.get("kind") == "overshoot":
            reasons.append(
                f"{event.get('max_users')} users ran against the shape's "
                f"{event.get('shape_users')} from {_clock(event['ts'], measured_from)} for "
                f"{event.get('duration_s')} s: the load was not the shape's"
            )
    return reasons


def invalid_reasons(data: RunData, generator: GeneratorHealth) -> list[str]:
    reasons = []
    totals = data.judged_totals
    n = totals.n
    if n == 0:
        reasons.append("no samples after warm-up: the samples are absent, empty or all warm-up")
    elif n < MIN_SAMPLES:
        reasons.append(f"only {n} requests after warm-up (fewer than {MIN_SAMPLES})")
    else:
        share = totals.no_response / n
        if share >= UNREACHABLE_SHARE:
            reasons.append(f"target unreachable: {share:.0%} of requests got no response")
    if generator["saturated"]:
        at = _clock(generator["saturated_at"] or data.measured_from, data.measured_from)
        reasons.append(
            f"a generator process averaged {generator['cpu_window_max']:.0f} % of a core over "
            f"{generator['cpu_window_s']} s from {at} (limit {CPU_SATURATED:.0f} %; peak "
            f"{generator['cpu_max']:.0f} %, p95 {generator['cpu_p95']:.0f} %): the load "
            "generator, not the target, set the pace"
        )
    reasons.extend(_health_reasons(generator, data.measured_from))
    if "stalls" in generator:
        reasons.extend(_stall_reasons(generator["stalls"], data.measured_from))
    opened = generator.get("open_model")
    if opened and opened.get("late_share", 0.0) > opened.get("max_late_share", 1.0):
        reasons.append(
            f"the open model fell behind its schedule: {opened['late']:,} of "
            f"{opened['started']:,} requests ({opened['late_share']:.1%}) started more than "
            f"{opened['late_s']:g} s after their intended time (at most "
            f"{opened['max_late_share']:.1%} may; worst {opened['max_start_lag_s']:.2f} s, "
            f"{opened['peak_in_flight']:,} of {opened['max_in_flight']:,} in flight at most)"
        )
    return reasons


def measured_duration(data: RunData) -> float | None:
    totals = data.judged_totals
    if totals.n < 2 or totals.ts_max is None:
        return None
    d = float(totals.ts_max) - data.measured_from
    return d if d > 0 else None

"""Whether a run can be judged at all: enough samples, a reachable target, a load generator
that did not set the pace itself (docs/run-format.md: an invalid run exits 3)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from reports.loading import RunData
from reports.runfiles import GeneratorHealth
from reports.stats import percentiles

__all__ = [
    "CPU_SATURATED",
    "CPU_SUSTAINED_S",
    "MIN_SAMPLES",
    "UNREACHABLE_SHARE",
    "generator_health",
    "invalid_reasons",
    "measured_duration",
]

CPU_SATURATED = 90.0  # % of one core: above it the generator, not the target, sets the pace
CPU_SUSTAINED_S = 10  # seconds in a row over CPU_SATURATED that also invalidate a run
MIN_SAMPLES = 100  # fewer judged requests than this cannot bound any percentile we gate on
UNREACHABLE_SHARE = 0.5  # half the requests without any response: the target was not there


def generator_health(data: RunData) -> GeneratorHealth:
    gen = data.generator
    out: GeneratorHealth = {
        "cpu_max": None,
        "cpu_p95": None,
        "saturated": False,
        "sustained_s": 0,
        "intended_rps": None,
        "achieved_rps": None,
    }
    if not gen.empty:
        g = gen[gen["ts"] >= data.measured_from]
        cpu = g["cpu_percent_max"].dropna().to_numpy(dtype=np.float64)
        if len(cpu):
            out["cpu_max"] = float(cpu.max())
            out["cpu_p95"] = percentiles(np.sort(cpu), (95.0,))[0]
            out["sustained_s"] = _longest_run(cpu > CPU_SATURATED)
            out["saturated"] = bool(
                (out["cpu_p95"] or 0) > CPU_SATURATED or out["sustained_s"] >= CPU_SUSTAINED_S
            )
        intended = g["intended_rps"].dropna()
        if len(intended):
            out["intended_rps"] = float(intended.mean())
        achieved = g["achieved_rps"].dropna()
        if len(achieved):
            out["achieved_rps"] = float(achieved.mean())
    if out["achieved_rps"] is None:
        d = measured_duration(data)
        out["achieved_rps"] = (len(data.judged) / d) if d else None
    return out


def _longest_run(flags: NDArray[np.bool_]) -> int:
    best = cur = 0
    for f in flags:
        cur = cur + 1 if f else 0
        best = max(best, cur)
    return best


def invalid_reasons(data: RunData, generator: GeneratorHealth) -> list[str]:
    reasons = []
    n = len(data.judged)
    if n == 0:
        reasons.append("no samples after warm-up: samples.csv is absent, empty or all warm-up")
    elif n < MIN_SAMPLES:
        reasons.append(f"only {n} requests after warm-up (fewer than {MIN_SAMPLES})")
    else:
        share = float((data.judged["status"].to_numpy() == 0).mean())
        if share >= UNREACHABLE_SHARE:
            reasons.append(f"target unreachable: {share:.0%} of requests got no response")
    if generator["saturated"]:
        reasons.append(
            f"generator CPU {generator['cpu_p95']:.0f} % at p95, {generator['cpu_max']:.0f} % "
            f"at most (over {CPU_SATURATED:.0f} % of a core): the load generator, not the "
            "target, set the pace"
        )
    return reasons


def measured_duration(data: RunData) -> float | None:
    ts = data.judged["ts"]
    if len(ts) < 2:
        return None
    d = float(ts.max()) - data.measured_from
    return d if d > 0 else None

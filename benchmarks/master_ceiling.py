"""The master's ceiling: how many samples a second Locust's master takes through the suite.

A real Locust master (`--master`, the suite's hooks: it decodes each worker's Arrow batch and
writes it to samples/) and `--workers` real worker processes on loopback, each running
benchmarks/ceiling_locustfile.py: one Shipper user that records `rate / workers` synthetic rows
a second into the suite's recorder, shipped every 3 s through Locust's report channel
(`report_to_master` / `worker_report`, scenarios/hooks.py). No HTTP is sent.

For each total rate, over `--seconds`:

* the master's CPU (user + system, psutil) over the run, less the same setup's CPU at rate 0
  (Locust's own heartbeats and statistics), divided by the samples it wrote: CPU per sample;
* its busiest second (percent of one core, sampled every second);
* the share of the recorded rows that reached samples/ by the end (a master that falls
  behind leaves rows in its queue when the run stops) and the lag: the age of the newest row
  of the run when the master wrote it, worst over the run (read from the parts, each part's
  file time against its newest row's `ts`; compaction is off for the benchmark).

The ceiling at one core is 1 / (CPU per sample) less the rate-0 share, printed last.

    flock /tmp/velro-load.lock python -m benchmarks.master_ceiling --workers 8 \\
        --rates 5000,20000,40000 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import pyarrow.compute as pc
import pyarrow.parquet as pq

from velro_perf.reports.samplefiles import sample_files

PROJECT = Path(__file__).resolve().parents[1]
LOCUSTFILE = PROJECT / "benchmarks" / "ceiling_locustfile.py"
SEED = {
    "password": "unused",
    "service_key": None,
    "users": [{"id": "u1", "email": "u1@example.test"}],
}


@dataclass(frozen=True)
class Step:
    rate: float  # samples a second asked of all workers together
    workers: int
    seconds: float
    master_cpu_s: float
    master_peak_percent: float
    samples: int
    expected: int
    worst_lag_s: float | None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _locust(
    args: list[str], out: Path, rate_per_worker: float, mode: str
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT),
        "VELRO_SHIP_RATE": f"{rate_per_worker:g}",
        "VELRO_SAMPLES_COMPACT_PARTS": "0",  # parts keep their write times
        "VELRO_SHIP_MODE": mode,
    }
    locust = str(Path(sys.executable).with_name("locust"))
    log = (out / f"locust-{args[0].strip('-')}-{time.monotonic_ns()}.log").open("wb")
    return subprocess.Popen(  # noqa: S603 - locust of this environment
        [locust, "-f", str(LOCUSTFILE), *args],
        cwd=out,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def run_step(root: Path, rate: float, workers: int, seconds: float, mode: str) -> Step:
    out = root / f"rate-{rate:g}"
    out.mkdir()
    (out / "seed.json").write_text(json.dumps(SEED), encoding="utf-8")
    port = _free_port()
    master = _locust(
        [
            "--master",
            "--headless",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(workers),
            "-u",
            str(workers),
            "-r",
            str(workers),
            "-t",
            f"{seconds:g}s",
            "--host",
            "http://127.0.0.1:9",
            "--only-summary",
            "--velro-out",
            str(out),
            "--velro-fixtures",
            str(out / "seed.json"),
        ],
        out,
        rate / workers,
        mode,
    )
    crew = [
        # each worker's Shipper reads its rate from its own environment
        _locust(
            ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
            out,
            rate / workers,
            mode,
        )
        for _ in range(workers)
    ]
    watched = psutil.Process(master.pid)
    peak = 0.0
    watched.cpu_percent()
    while master.poll() is None:
        time.sleep(1.0)
        try:
            peak = max(peak, watched.cpu_percent())
            times = watched.cpu_times()
        except psutil.NoSuchProcess:
            break
    cpu = times.user + times.system
    for w in crew:
        try:
            w.wait(timeout=30)
        except subprocess.TimeoutExpired:
            w.kill()
    samples, lag = _written(out)
    return Step(rate, workers, seconds, cpu, peak, samples, int(rate * seconds), lag)


def _written(out: Path) -> tuple[int, float | None]:
    """Rows in samples/ and the worst age of a part's newest row when the part was written."""
    total = 0
    worst: float | None = None
    for path in sample_files(out):
        table = pq.read_table(path, columns=["ts"])
        total += table.num_rows
        if table.num_rows:
            newest = pc.max(table.column("ts")).as_py()
            age = path.stat().st_mtime - newest
            worst = age if worst is None else max(worst, age)
    return total, worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rates", default="5000,20000,40000", help="samples/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", type=Path, help="write the steps here too")
    parser.add_argument(
        "--arrow",
        action="store_true",
        help="workers build their rows with pyarrow at each report instead of recording them "
        "one by one (benchmarks/ceiling_locustfile.py): the master, not the workers, is the limit",
    )
    args = parser.parse_args(argv)
    mode = "arrow" if args.arrow else "record"
    rates = [float(r) for r in args.rates.split(",")]
    steps = []
    with tempfile.TemporaryDirectory(prefix="velro-ceiling-") as tmp:
        root = Path(tmp)
        idle = run_step(root, 0.0, args.workers, args.seconds, mode)
        print(f"rate 0: master CPU {idle.master_cpu_s:.2f} s over {args.seconds:g} s", flush=True)
        print("| samples/s asked | written | master CPU (s) | us/sample | peak % | worst lag (s) |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: |")
        for rate in rates:
            step = run_step(root, rate, args.workers, args.seconds, mode)
            steps.append(step)
            per = (step.master_cpu_s - idle.master_cpu_s) / max(step.samples, 1)
            lag = f"{step.worst_lag_s:.1f}" if step.worst_lag_s is not None else "-"
            print(
                f"| {rate:,.0f} | {step.samples:,} ({step.samples / max(step.expected, 1):.0%}) | "
                f"{step.master_cpu_s:.2f} | {per * 1e6:.1f} | {step.master_peak_percent:.0f} | "
                f"{lag} |",
                flush=True,
            )
    busiest = max(steps, key=lambda s: s.samples)
    per_sample = (busiest.master_cpu_s - idle.master_cpu_s) / max(busiest.samples, 1)
    idle_share = idle.master_cpu_s / args.seconds
    ceiling = (1.0 - idle_share) / per_sample if per_sample > 0 else float("inf")
    print(
        f"ceiling at one core: {ceiling:,.0f} samples/s ({per_sample * 1e6:.1f} us of master CPU "
        f"per sample at {busiest.rate:,.0f}/s; Locust's own share {idle_share:.0%} of a core "
        f"with {args.workers} workers)"
    )
    if args.json:
        payload = {"idle": asdict(idle), "steps": [asdict(s) for s in steps], "ceiling": ceiling}
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The service's cost per request as the number of open connections grows, beside the bare anchor.

    python -m benchmarks.costcurve [--connections 16,1000,10000] [--rate 400] [--duration 20]
                                   [--workers 1] [--out runs/bench/costcurve.json]
    make costcurve

At a fixed request rate (open model, ``benchmarks.connhold``), with 16, 1,000 and 10,000
keep-alive connections open and the rate spread over all of them (so at 10,000 each
connection sends once every 25 s at 400 requests/s, like users who think between requests),
it measures the server's CPU time per request and the latency of

- ``bare``: ``GET /bare/me`` of ``benchmarks.bare_app`` (FastAPI, the same JWT check),
- ``me``: ``GET /api/v1/auth/me`` of the reference service (fixed profile, SQLite, Redis
  when 127.0.0.1:6379 answers),
- ``check``: ``GET /api/v1/authz/check`` of the reference service,

server by server and connection count by connection count, alternating bare and velro so that
a neighbour's burst on this shared machine lands on both. Each phase's warm-up touches every
connection once before the measured window. The servers are started as the runner starts them
(``velro serve``, keep-alive 75 s). A cost that grows with the connections, not the requests,
shows as CPU per request rising along a row; the goal is the 10,000-connection figure within
1.5x of the 16-connection one.

Performance is measured here, not asserted: exit 0 when every phase ran, 1 when one failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.throughput import (
    ROOT,
    Server,
    _bare,
    _check_ok,
    _redis_up,
    _seed,
    _velro,
    servers_session,
    velro_env,
)
from velro_perf.target import free_port

__all__ = ["main"]


def _phase(server: Server, path: str, token: str, conns: int, args: argparse.Namespace) -> Any:
    _check_ok(server.url + path, token)
    warmup = max(args.warmup, conns / args.rate + 2.0)  # every connection used once first
    cmd = [
        sys.executable, "-m", "benchmarks.connhold", server.url + path,
        "--header", f"Authorization: Bearer {token}",
        "--connections", str(conns), "--rate", str(args.rate),
        "--warmup", str(warmup), "--duration", str(args.duration),
        "--server-pid", str(server.pid),
    ]  # fmt: skip
    proc = subprocess.run(  # noqa: S603 - our own interpreter and module
        cmd, cwd=ROOT, capture_output=True, text=True, check=False,
        timeout=warmup + args.duration + 120,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"connhold failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="velro-costcurve-"))
    log = work / "servers.log"
    redis = _redis_up()
    prefix = f"velro_cc_{os.getpid()}:"
    env = velro_env(work, redis=redis, prefix=prefix, secret=os.urandom(24).hex())
    rows: list[dict[str, Any]] = []
    started = datetime.now(UTC).isoformat()
    workers = ["--workers", str(args.workers)] if args.workers > 1 else []
    with servers_session("costcurve", log, redis=redis, prefix=prefix):
        with _velro(env, free_port(), log) as server:
            token, project = _seed(server.url)
        paths = {
            "me": "/api/v1/auth/me",
            "check": f"/api/v1/authz/check?resource_id={project}&action=read",
        }
        for conns in args.connections:
            with _bare(env, free_port(), log) as server:
                rows.append({"endpoint": "bare", **_phase(server, "/bare/me", token, conns, args)})
                _say(rows[-1])
            with _velro(env, free_port(), log, extra=workers) as server:
                for name, path in paths.items():
                    rows.append({"endpoint": name, **_phase(server, path, token, conns, args)})
                    _say(rows[-1])
    return {
        "started_at": started,
        "ended_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "loadavg_end": list(os.getloadavg())},
        "config": {
            "rate": args.rate,
            "duration_s": args.duration,
            "connections": args.connections,
            "velro_workers": args.workers,
            "velro": {"profile": "fixed", "database": "sqlite", "redis": redis},
            "client": "benchmarks.connhold (open model, rate spread over every connection)",
        },
        "rows": rows,
        "table": _table(rows, args.connections),
    }


def _table(rows: list[dict[str, Any]], counts: list[int]) -> list[str]:
    """The README's table: CPU per request and p50/p99 per endpoint and connection count."""
    out = [
        "| endpoint | " + " | ".join(f"{c:,} connections" for c in counts) + " | 10k/16 |",
        "| --- |" + " --- |" * (len(counts) + 1),
    ]
    for name in ("bare", "me", "check"):
        cells, cpu = [], []
        for c in counts:
            row = next((r for r in rows if r["endpoint"] == name and r["connections"] == c), None)
            if row is None:
                cells.append("-")
                continue
            lat = row["latency_ms"]
            us = row["server_cpu_us_per_request"]
            cpu.append(us)
            cells.append(f"{us:.0f} µs, p50 {lat['p50']:.2f} / p99 {lat['p99']:.2f} ms")
        ratio = f"{cpu[-1] / cpu[0]:.2f}x" if len(cpu) == len(counts) and cpu[0] else "-"
        out.append(f"| {name} | " + " | ".join(cells) + f" | {ratio} |")
    return out


def _say(row: dict[str, Any]) -> None:
    lat = row["latency_ms"]
    print(
        f"{row['endpoint']:<6} {row['connections']:>6} conns  {row['achieved_rps']:>7} rps  "
        f"server {row['server_cpu_us_per_request']} µs CPU/req  "
        f"p50 {lat['p50']} p99 {lat['p99']} ms  errors {row['errors']} no_idle {row['no_idle']}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.costcurve", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--connections",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[16, 1000, 10000],
        help="comma-separated connection counts (default 16,1000,10000)",
    )
    parser.add_argument("--rate", type=float, default=400.0, help="requests a second")
    parser.add_argument("--duration", type=float, default=20.0, metavar="S", help="per phase")
    parser.add_argument("--warmup", type=float, default=5.0, metavar="S", help="at least")
    parser.add_argument("--workers", type=int, default=1, help="velro serve --workers")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/costcurve.json"))
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or min(args.connections) < 1:
        parser.error("give --rate > 0, --duration > 0 and connection counts >= 1")
    try:
        doc = run(args)
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"costcurve: failed: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print()
    print("\n".join(doc["table"]))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A cheap open-model client: many keep-alive connections, a fixed rate spread over them.

    python -m benchmarks.connhold URL --connections 10000 --rate 400
                                  [--header "Name: value"] [--warmup 5] [--duration 20]
                                  [--server-pid PID]

It opens ``connections`` keep-alive connections first, then sends ``rate`` requests a second
in total, each at its intended time, each on the connection that has waited longest since its
last request (round robin over the idle ones). So with 16 connections every connection is
busy, and with 10,000 every connection sends once every ``connections / rate`` seconds and is
idle in between: the shape of a large population of users who think between requests, which
is what costs a server per connection (accepts, idle sockets in the poller, keep-alive
timers, buffers), without a Locust process per user.

Latency is counted from the intended start (no coordinated omission); a request that finds no
idle connection is sent on a new one, and counted as ``no_idle``. With ``--server-pid`` the
client reads the server's CPU time (the process and its children: uvicorn's workers) at the
start and end of the measured window, so the figure covers exactly the requests it counts.
One JSON line on stdout. Loopback targets only.

The connections are the load tools' one raw client (``benchmarks.rawhttp``).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import resource
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psutil

from benchmarks.rawhttp import (
    Connection,
    add_client_arguments,
    client_options,
    connect,
    get_request,
    run_and_print,
)
from velro_perf.reports.stats import percentiles

__all__ = ["HoldResult", "hold", "main"]
_OPEN_BATCH = 500  # connections opened concurrently while filling the pool


@dataclass
class HoldResult:
    url: str
    connections: int
    rate: float
    requests: int = 0
    errors: int = 0
    no_idle: int = 0
    seconds: float = 0.0
    server_cpu_s: float | None = None
    client_cpu_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        lat = np.sort(np.asarray(self.latencies_ms, dtype=np.float64))
        # the budgets' rule (nearest rank), as every figure of the suite
        p50, p95, p99 = (
            round(v, 3) if v is not None else None for v in percentiles(lat, (50, 95, 99))
        )
        top = round(float(lat[-1]), 3) if len(lat) else None

        n = self.requests

        def per_request_us(cpu_s: float | None) -> float | None:
            return round(cpu_s / n * 1e6, 1) if cpu_s is not None and n else None

        return {
            "url": self.url,
            "connections": self.connections,
            "rate": self.rate,
            "requests": n,
            "errors": self.errors,
            "no_idle": self.no_idle,
            "seconds": round(self.seconds, 3),
            "achieved_rps": round(n / self.seconds, 1) if self.seconds else None,
            "latency_ms": {"p50": p50, "p95": p95, "p99": p99, "max": top},
            "server_cpu_us_per_request": per_request_us(self.server_cpu_s),
            "client_cpu_us_per_request": per_request_us(self.client_cpu_s),
        }


class _Pool:
    def __init__(self, host: str, port: int, request: bytes, result: HoldResult) -> None:
        self.host, self.port, self.request, self.result = host, port, request, result
        self.idle: collections.deque[Connection] = collections.deque()
        self.measure_from = float("inf")
        self.stop_at = float("inf")

    async def open_one(self) -> None:
        try:
            conn = await connect(self.host, self.port, self)
        except OSError:
            self.result.errors += 1
            return
        self.idle.append(conn)

    def completed(self, conn: Connection, status: int) -> None:
        # latency from the intended start (sent_at), so a late send is not hidden
        done = time.perf_counter()
        if self.measure_from <= conn.sent_at and done <= self.stop_at:
            if status == 200:
                self.result.requests += 1
                self.result.latencies_ms.append((done - conn.sent_at) * 1e3)
            else:
                self.result.errors += 1
        self.idle.append(conn)

    def lost(self, conn: Connection) -> None:
        # a connection the server closed while a request of the window was in flight
        if conn.busy and self.measure_from <= conn.sent_at < self.stop_at:
            self.result.errors += 1

    async def fire(self, intended: float) -> None:
        while self.idle:
            conn = self.idle.popleft()
            if conn.open:
                conn.send(self.request, intended)
                return
        # every connection is busy: a new one, so the schedule holds; counted
        if intended >= self.measure_from:
            self.result.no_idle += 1
        await self.open_one()
        if self.idle:
            self.idle.pop().send(self.request, intended)


def _server_cpu_s(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return None
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def hold(
    url: str,
    *,
    connections: int,
    rate: float,
    headers: dict[str, str] | None = None,
    warmup_s: float = 5.0,
    duration_s: float = 20.0,
    server_pid: int | None = None,
) -> HoldResult:
    host, port, request = get_request(url, headers)
    result = HoldResult(url=url, connections=connections, rate=rate)
    pool = _Pool(host, port, request, result)
    for start in range(0, connections, _OPEN_BATCH):
        batch = min(_OPEN_BATCH, connections - start)
        await asyncio.gather(*(pool.open_one() for _ in range(batch)))
    if result.errors:
        raise ConnectionError(f"{result.errors} of {connections} connections were refused")

    interval = 1.0 / rate
    t0 = time.perf_counter()
    pool.measure_from = t0 + warmup_s
    pool.stop_at = pool.measure_from + duration_s
    cpu_at_start: tuple[float | None, float] | None = None
    k = 0
    while True:
        intended = t0 + k * interval
        if intended >= pool.stop_at:
            break
        if cpu_at_start is None and intended >= pool.measure_from:
            cpu_at_start = (_server_cpu_s(server_pid), _own_cpu_s())
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await pool.fire(intended)
        k += 1
    # the last responses of the window
    await asyncio.sleep(max(0.0, pool.stop_at - time.perf_counter()) + 0.5)
    assert cpu_at_start is not None
    server_before, own_before = cpu_at_start
    server_after = _server_cpu_s(server_pid)
    if server_before is not None and server_after is not None:
        result.server_cpu_s = server_after - server_before
    result.client_cpu_s = _own_cpu_s() - own_before
    result.seconds = duration_s
    for conn in list(pool.idle):
        conn.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.connhold", description=__doc__)
    add_client_arguments(parser, warmup_s=5.0, duration_s=20.0)
    parser.add_argument("--rate", type=float, default=400.0, help="requests a second, in total")
    parser.add_argument("--server-pid", type=int, default=None)
    args = parser.parse_args(argv)
    if args.connections < 1 or args.rate <= 0 or args.duration <= 0:
        parser.error("give --connections >= 1, --rate > 0 and --duration > 0")
    return run_and_print(hold(**client_options(args), rate=args.rate, server_pid=args.server_pid))


if __name__ == "__main__":
    raise SystemExit(main())

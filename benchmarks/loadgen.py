"""A tiny closed-loop HTTP/1.1 load generator for the throughput comparison.

    python -m benchmarks.loadgen URL [--header "Name: value"] [--connections 16]
                                     [--warmup 2] [--duration 10]

``connections`` keep-alive connections each send a request, read the whole response, and send
the next one (closed loop), on the load tools' one raw client (``benchmarks.rawhttp``: why not
httpx or Locust). Requests sent during the warm-up, or answered after the window, are not
counted. The result is one JSON line on stdout: ``{"url", "requests", "errors", "seconds",
"rps", "latency_ms": {"p50", "p99"}}``; ``errors`` counts responses other than 200 and broken
connections. Only loopback targets are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.rawhttp import (
    Connection,
    add_client_arguments,
    client_options,
    connect,
    get_request,
    run_and_print,
)
from velro_perf.reports.stats import percentiles

__all__ = ["LoadResult", "drive", "main"]
_REFUSED_BACKOFF_S = 0.05  # before reopening a refused connection: not a cost model


@dataclass
class LoadResult:
    url: str
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        # the budgets' rule (nearest rank), as every figure of the suite
        p50, p99 = percentiles(np.sort(np.asarray(self.latencies_ms, dtype=np.float64)), (50, 99))
        return {
            "url": self.url,
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "latency_ms": {"p50": p50, "p99": p99},
        }


class _ClosedLoop:
    """The owner of the connections: each answer is counted, then the next request sent."""

    def __init__(
        self, host: str, port: int, request: bytes, window: tuple[float, float], result: LoadResult
    ) -> None:
        self.host, self.port, self.request, self.result = host, port, request, result
        self.measure_from, self.stop_at = window
        self.conns: set[Connection] = set()
        self.reopening: set[asyncio.Task[None]] = set()
        self.closing = False

    async def open_one(self) -> None:
        """A connection that sends its first request; reopened after a refusal until the end."""
        while time.perf_counter() < self.stop_at:
            try:
                conn = await connect(self.host, self.port, self)
            except OSError:
                self.result.errors += 1
                await asyncio.sleep(_REFUSED_BACKOFF_S)
                continue
            self.conns.add(conn)
            conn.send(self.request, time.perf_counter())
            return

    def completed(self, conn: Connection, status: int) -> None:
        done = time.perf_counter()
        if conn.sent_at >= self.measure_from and done <= self.stop_at:
            if status == 200:
                self.result.requests += 1
                self.result.latencies_ms.append((done - conn.sent_at) * 1e3)
            else:
                self.result.errors += 1
        if done < self.stop_at and conn.open:
            conn.send(self.request, time.perf_counter())

    def lost(self, conn: Connection) -> None:
        self.conns.discard(conn)
        now = time.perf_counter()
        if self.closing or now >= self.stop_at:
            return  # closed at the end, by us (a loop's timer may wake a hair early)
        if now >= self.measure_from:
            self.result.errors += 1
        task = asyncio.get_running_loop().create_task(self.open_one())
        self.reopening.add(task)
        task.add_done_callback(self.reopening.discard)


async def drive(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    connections: int = 16,
    warmup_s: float = 2.0,
    duration_s: float = 10.0,
) -> LoadResult:
    """Drive ``url`` with ``connections`` closed-loop connections; count the measured window."""
    host, port, request = get_request(url, headers, keep_alive=True)
    start = time.perf_counter()
    window = (start + warmup_s, start + warmup_s + duration_s)
    result = LoadResult(url=url)
    loop = _ClosedLoop(host, port, request, window, result)
    await asyncio.gather(*(loop.open_one() for _ in range(connections)))
    await asyncio.sleep(max(0.0, window[1] - time.perf_counter()))
    loop.closing = True
    for task in list(loop.reopening):
        task.cancel()
    for conn in list(loop.conns):
        conn.close()
    await asyncio.sleep(0)  # let the transports close before the loop does
    result.seconds = duration_s
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__)
    add_client_arguments(parser, warmup_s=2.0, duration_s=10.0)
    args = parser.parse_args(argv)
    return run_and_print(drive(**client_options(args)))


if __name__ == "__main__":
    raise SystemExit(main())

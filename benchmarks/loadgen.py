"""A tiny closed-loop HTTP/1.1 load generator for the throughput comparison.

    python -m benchmarks.loadgen URL [--header "Name: value"] [--connections 16]
                                     [--warmup 2] [--duration 10]

``connections`` keep-alive connections each send a request, read the whole response, and send
the next one (closed loop). Requests completed during the warm-up are not counted. The result
is one JSON line on stdout: ``{"url", "requests", "errors", "seconds", "rps",
"latency_ms": {"p50", "p99"}}``; ``errors`` counts responses other than 200 and broken
connections.

Why not httpx or Locust: their per-request cost in the client (tens to hundreds of µs of
Python) is near the server's own on a 2-core machine, so the client, not the server, would
set the figure. This client builds each request once and only parses a status line and
``Content-Length`` per response. Only loopback targets are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.rawhttp import add_client_arguments, get_request, install_uvloop, parse_headers
from reports.stats import percentiles

__all__ = ["LoadResult", "drive", "main"]


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


async def _read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    chunked = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value.strip())
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0].strip(), 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _connection(
    host: str,
    port: int,
    request: bytes,
    measure_from: float,
    stop_at: float,
    result: LoadResult,
) -> None:
    while time.monotonic() < stop_at:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            result.errors += 1
            await asyncio.sleep(0.05)  # back off from a refused connection, not a cost model
            continue
        try:
            while (started := time.monotonic()) < stop_at:
                writer.write(request)
                status = await _read_response(reader)
                done = time.monotonic()
                if started >= measure_from and done <= stop_at:
                    if status == 200:
                        result.requests += 1
                        result.latencies_ms.append((done - started) * 1e3)
                    else:
                        result.errors += 1
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            if time.monotonic() >= measure_from:
                result.errors += 1
        finally:
            writer.close()


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
    start = time.monotonic()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s
    result = LoadResult(url=url)
    await asyncio.gather(
        *(
            _connection(host, port, request, measure_from, stop_at, result)
            for _ in range(connections)
        )
    )
    result.seconds = duration_s
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__)
    add_client_arguments(parser, warmup_s=2.0, duration_s=10.0)
    args = parser.parse_args(argv)
    headers = parse_headers(args.header)
    install_uvloop()
    result = asyncio.run(
        drive(
            args.url,
            headers=headers,
            connections=args.connections,
            warmup_s=args.warmup,
            duration_s=args.duration,
        )
    )
    print(json.dumps(result.as_dict()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

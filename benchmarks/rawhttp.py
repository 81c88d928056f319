"""The one raw HTTP/1.1 client of the load tools: a keep-alive connection with one request in
flight, the request it sends (built once), and the command line both drivers share. The
closed loop (``benchmarks.loadgen``: each connection sends its next request when the last
answer is in) and the open model (``benchmarks.connhold``: a fixed rate spread over the
connections) are two owners of the same connections.

Why not httpx or Locust: their per-request cost in the client (tens to hundreds of µs of
Python) is near the server's own on a 2-core machine, so the client, not the server, would
set the figure. Why a protocol and not streams: at 10,000 connections the client shares the
2 cores with the server it measures; an ``asyncio.Protocol`` with one buffer per connection
costs a few µs a request, a ``StreamReader`` several times more. Only a status line and
``Content-Length`` are parsed; a chunked answer (which the services measured here never send)
counts as an error and closes the connection, rather than being misread. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Coroutine
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

__all__ = [
    "LOOPBACK",
    "Connection",
    "Owner",
    "add_client_arguments",
    "client_options",
    "connect",
    "get_request",
    "install_uvloop",
    "parse_headers",
    "run_and_print",
]

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Owner(Protocol):
    """What a connection tells: an answer's status (0: one this client cannot read), or that
    the connection is gone."""

    def completed(self, conn: Connection, status: int) -> None: ...

    def lost(self, conn: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight; `sent_at` is the time
    the owner gave for the request in flight (sent, or intended: the owner's clock)."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.sent_at = 0.0
        self.open = False
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, hence the cast
        self.transport = cast(asyncio.Transport, transport)
        self.open = True

    def send(self, request: bytes, sent_at: float) -> None:
        assert self.transport is not None
        self.sent_at = sent_at
        self.busy = True
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower()
        if b"transfer-encoding:" in head:
            self.busy = False
            self.owner.completed(self, 0)
            self.close()
            return
        at = head.find(b"content-length:")
        length = int(head[at + 15 : head.find(b"\r\n", at)].strip() or 0) if at >= 0 else 0
        if len(self.buf) < end + 4 + length:
            return
        status = int(self.buf[9:12])
        self.buf = self.buf[end + 4 + length :]
        self.busy = False
        self.owner.completed(self, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.owner.lost(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(host: str, port: int, owner: Owner) -> Connection:
    """A new connection to ``host:port`` reporting to `owner`; OSError when refused."""
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: Connection(owner), host, port)
    return conn


def get_request(
    url: str, headers: dict[str, str] | None, *, keep_alive: bool = False
) -> tuple[str, int, bytes]:
    """``(host, port, the bytes of GET url)``; ValueError unless ``url`` is on loopback."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host not in LOOPBACK:
        raise ValueError(f"target host {host!r} is not loopback; give http://127.0.0.1:PORT/...")
    port = parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {path or '/'} HTTP/1.1", f"Host: {host}:{port}"]
    if keep_alive:
        lines.append("Connection: keep-alive")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode()


def add_client_arguments(
    parser: argparse.ArgumentParser, *, warmup_s: float, duration_s: float
) -> None:
    """The options both drivers take: the URL, headers, connections, warm-up and duration."""
    parser.add_argument("url")
    parser.add_argument("--header", action="append", default=[], metavar="'Name: value'")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=warmup_s, metavar="S")
    parser.add_argument("--duration", type=float, default=duration_s, metavar="S")


def client_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of add_client_arguments as the drivers' keyword arguments."""
    return {
        "url": args.url,
        "headers": parse_headers(args.header),
        "connections": args.connections,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
    }


def parse_headers(given: list[str]) -> dict[str, str]:
    """``--header 'Name: value'`` options as a mapping."""
    return {k.strip(): v.strip() for k, v in (h.split(":", 1) for h in given)}


class _Result(Protocol):
    def as_dict(self) -> dict[str, object]: ...


def run_and_print(drive: Coroutine[object, object, _Result]) -> int:
    """A load tool's main: drive the load on uvloop, print its result as one JSON line."""
    install_uvloop()
    print(json.dumps(asyncio.run(drive).as_dict()))
    return 0


def install_uvloop() -> None:
    """uvloop when installed (uvicorn[standard] has it): the client's own cost per request,
    halved."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

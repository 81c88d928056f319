"""What the two raw HTTP/1.1 clients share (``benchmarks.loadgen``, closed loop, and
``benchmarks.connhold``, open model): the one request they send, built once, and their
command line's headers and event loop."""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit

__all__ = [
    "LOOPBACK",
    "add_client_arguments",
    "get_request",
    "install_uvloop",
    "parse_headers",
]

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


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
    """The options both clients take: the URL, headers, connections, warm-up and duration."""
    parser.add_argument("url")
    parser.add_argument("--header", action="append", default=[], metavar="'Name: value'")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=warmup_s, metavar="S")
    parser.add_argument("--duration", type=float, default=duration_s, metavar="S")


def parse_headers(given: list[str]) -> dict[str, str]:
    """``--header 'Name: value'`` options as a mapping."""
    return {k.strip(): v.strip() for k, v in (h.split(":", 1) for h in given)}


def install_uvloop() -> None:
    """uvloop when installed (uvicorn[standard] has it): the client's own cost per request,
    halved."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

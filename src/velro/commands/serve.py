"""``velro serve``: the reference service on uvicorn."""

from __future__ import annotations

import argparse
import errno
import os
import secrets
import socket
import tempfile

from fastapi import FastAPI

from velro import gctune
from velro.app import create_app
from velro.errors import ServiceConfigError
from velro.settings import Settings

__all__ = ["register"]

# Longer than any think time of the load shapes (5-15 s): with uvicorn's default of 5 s most
# requests of a 10,000-user run reconnected, p99 410 ms instead of 160 ms (README).
KEEP_ALIVE_S = 75


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="serve the reference service")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--profile", choices=["fixed", "degraded"], help="overrides VELRO_PROFILE")
    p.add_argument("--keep-alive", type=int, default=KEEP_ALIVE_S, help="seconds (default 75)")
    p.add_argument(
        "--access-token-ttl",
        type=int,
        metavar="SECONDS",
        help="access tokens' lifetime; overrides VELRO_TOKEN_TTL_S (default 900)",
    )
    p.add_argument(
        "--refresh-token-ttl",
        type=int,
        metavar="SECONDS",
        help="refresh tokens' lifetime; overrides VELRO_REFRESH_TOKEN_TTL_S (default 14 days)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.profile:
        os.environ["VELRO_PROFILE"] = args.profile
    # through the environment, as every setting: each worker process reads it (worker_app)
    for option, value, variable in (
        ("--access-token-ttl", args.access_token_ttl, "VELRO_TOKEN_TTL_S"),
        ("--refresh-token-ttl", args.refresh_token_ttl, "VELRO_REFRESH_TOKEN_TTL_S"),
    ):
        if value is None:
            continue
        if value < 1:
            raise ServiceConfigError(f"{option} is {value}; give a number of seconds, 1 or more")
        os.environ[variable] = str(value)
    # Every worker process must sign and verify with the same key.
    os.environ.setdefault("VELRO_JWT_SECRET", secrets.token_urlsafe(32))
    if args.workers < 1:
        raise ServiceConfigError(f"--workers is {args.workers}; give 1 or more")
    os.environ["VELRO_WORKERS"] = str(args.workers)
    settings = Settings.from_env()  # fail here, once, with a clear message
    _check_port_free(args.host, args.port)
    with tempfile.TemporaryDirectory(prefix="velro-hash-slots-") as slots:
        # the workers' one hashing budget (hashbudget.py), unless the operator placed it
        os.environ.setdefault("VELRO_HASH_SLOTS_DIR", slots)
        _serve(args, settings)
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    uvicorn.run(
        "velro.commands.serve:worker_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        timeout_keep_alive=args.keep_alive,
        server_header=False,
        access_log=False,  # the app writes one line per request, with its request id
        log_level=settings.log_level,
        lifespan="on",
    )


def worker_app() -> FastAPI:
    """The app of one worker process: its garbage collector settled first (gctune.py)."""
    settings = Settings.from_env()
    app = create_app(settings)
    gctune.settle(settings.gc_gen0_threshold)
    return app


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServiceConfigError(
                    f"port {port} on {host} is in use; stop what listens there or give --port"
                ) from None
            raise ServiceConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None

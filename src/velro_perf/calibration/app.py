"""The calibration target: a tiny Starlette app whose answers wait as a law says (laws.py).

It answers the two calls the authentication users make (login, `GET /api/v1/auth/me`) with
the reference service's own security headers (velro.headers: what the contract's checks ask
of every answer), and serves `/health`. Run as
`python -m velro_perf.calibration --serve --port N --law ...` (process.py starts it).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from typing import Any

from velro_perf.calibration.laws import KINDS, Law

__all__ = ["build_app", "serve_main"]


def _headers() -> dict[str, str]:
    from velro.headers import SECURITY_HEADERS

    return {name.decode("latin-1"): value.decode("latin-1") for name, value in SECURITY_HEADERS}


def build_app(law: Law) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    started = time.time()
    headers = _headers()
    slots: list[asyncio.Semaphore] = []  # made in the server's loop, at the first request

    async def wait(now: float) -> float:
        if law.kind != "slots":
            delay = law.wait_s(now, started, random.random())
            await asyncio.sleep(delay)
            return delay
        if not slots:
            slots.append(asyncio.Semaphore(law.slots))
        async with slots[0]:  # asyncio's semaphore wakes its waiters first come, first served
            await asyncio.sleep(law.hold_ms / 1000.0)
        return time.time() - now

    async def answer(request: Request, body: dict[str, Any], status: int = 200) -> JSONResponse:
        waited = await wait(time.time())
        return JSONResponse(
            body,
            status_code=status,
            headers={
                **headers,
                "X-Request-ID": request.headers.get("x-request-id") or str(uuid.uuid4()),
                "Server-Timing": f"app;dur={waited * 1000:.3f}",
            },
        )

    def user(user_id: str) -> dict[str, Any]:
        return {
            "id": user_id,
            "email": f"{user_id}@example.com",
            "full_name": "calibration",
            "created_at": "2026-01-01T00:00:00Z",
        }

    async def login(request: Request) -> JSONResponse:
        data = await request.json()
        user_id = str(data["email"]).split("@", 1)[0]
        token = f"cal.{user_id}.sig"  # shaped like a JWT: the scenarios check three parts
        # every field the contract's login returns (targets/contract.toml), refresh included
        body = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": 3600,
            "refresh_token": f"cal-refresh.{user_id}",
            "refresh_expires_in": 86400,
        }
        return await answer(request, body)

    async def me(request: Request) -> JSONResponse:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        return await answer(request, user(token.split(".")[1]))

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/api/v1/auth/login", login, methods=["POST"]),
            Route("/api/v1/auth/me", me),
            Route("/health", health),
        ]
    )


def serve_main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="velro_perf.calibration --serve")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--law", default="uniform", choices=KINDS)
    parser.add_argument("--delay-ms", type=float, default=5.0)
    parser.add_argument("--jitter-ms", type=float, default=10.0)
    parser.add_argument("--period-s", type=float, default=2.0)
    parser.add_argument("--stall-s", type=float, default=0.3)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--hold-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    law = Law(
        args.law,
        args.delay_ms,
        args.jitter_ms,
        args.period_s,
        args.stall_s,
        args.slots,
        args.hold_ms,
    )
    uvicorn.run(
        build_app(law),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_keep_alive=75,
    )
    return 0

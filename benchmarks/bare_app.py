"""The bare baseline of the throughput comparison: FastAPI, one JWT check, a small JSON.

It verifies exactly what the reference service verifies on ``GET /auth/me`` before any
database or cache work (HS256 pinned, RFC 8725 3.1; ``aud``, ``iss``, ``exp`` and every claim
present; the same secret, from ``VELRO_JWT_SECRET``), and nothing else: no middleware, no
database, no cache. Its requests per second are the ceiling the reference service is
measured against on the same machine (``benchmarks/throughput.py``).

Served by ``uvicorn benchmarks.bare_app:app`` (or ``--factory benchmarks.bare_app:create_app``).
"""

from __future__ import annotations

import os
from typing import Any

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

__all__ = ["create_app"]

_REQUIRED = ["sub", "exp", "iat", "aud", "iss", "jti", "ver"]


def create_app(
    secret: str | None = None, *, issuer: str | None = None, audience: str | None = None
) -> FastAPI:
    """The bare app; arguments default to the ``VELRO_JWT_*`` variables the service reads."""
    key = secret or os.environ.get("VELRO_JWT_SECRET", "")
    if len(key) < 32:
        raise SystemExit(
            "bare_app: VELRO_JWT_SECRET is missing or shorter than 32 characters; "
            "give the reference service's secret"
        )
    iss = issuer or os.environ.get("VELRO_JWT_ISSUER", "velro")
    aud = audience or os.environ.get("VELRO_JWT_AUDIENCE", "velro-api")
    codec = jwt.PyJWT()
    options: Any = {"require": _REQUIRED, "strict_aud": True}
    unauthorized = {"error": {"code": "invalid_token", "message": "Bearer token required."}}

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/bare/me")
    async def me(request: Request) -> Any:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return JSONResponse(unauthorized, status_code=401)
        try:
            claims = codec.decode(
                token, key, algorithms=["HS256"], audience=aud, issuer=iss, options=options
            )
        except jwt.PyJWTError:
            return JSONResponse(unauthorized, status_code=401)
        # a JSONResponse straight away: no response-model validation, the cheapest FastAPI path
        return JSONResponse({"id": claims["sub"], "ver": claims["ver"]})

    return app


def __getattr__(name: str) -> Any:
    # ``uvicorn benchmarks.bare_app:app`` builds the app on first access, not at import, so
    # importing this module (tests, ruff) needs no secret.
    if name == "app":
        return create_app()
    raise AttributeError(name)

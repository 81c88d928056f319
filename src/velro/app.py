"""``create_app(settings)``: the reference service as an ASGI app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from velro import timing
from velro.admission import Admission
from velro.authz import Authorizer
from velro.db import DatabaseUnavailable
from velro.errors import ApiError, OperationTimeout
from velro.middleware import VelroMiddleware
from velro.routes import api_router, root_router
from velro.services import build_services
from velro.settings import Settings
from velro.tracker import Tracker

__all__ = ["create_app"]

log = logging.getLogger("velro")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    tracker = Tracker()
    # the degraded profile queues everything, as the story's service did
    admission = None if settings.is_degraded else Admission(settings.shed_max_lag_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = build_services(settings, tracker)
        app.state.services = svc
        app.state.authorizer = authorizer = Authorizer(svc)

        def overload() -> dict[str, Any]:
            return {
                "hashing": svc.passwords.budget_stats(),
                "admission": admission.stats() if admission is not None else None,
            }

        tracker.bind(
            cache_stats=svc.cache.stats, executor_stats=svc.executor.stats, overload_stats=overload
        )
        await svc.start()
        if admission is not None:
            admission.start()
        try:
            yield
        finally:
            if admission is not None:
                await admission.close()
            await authorizer.close()  # flushes the buffered audit rows of denials
            await svc.close()

    app = FastAPI(
        title="velro reference service",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.admission = admission
    app.include_router(root_router)
    app.include_router(api_router, prefix="/api/v1")
    _install_error_handlers(app)
    app.add_middleware(
        VelroMiddleware,
        max_body_bytes=settings.max_body_bytes,
        tracker=tracker,
        admission=admission,
    )
    return app


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "request_id": timing.request_id()}},
        status_code=status,
        headers=headers,
    )


_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "The body is not valid JSON.")
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{where or 'request'}: {first.get('msg', 'invalid value')}"
        return error_response(422, "invalid_request", message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else "The request failed."
        return error_response(exc.status_code, code, message, dict(exc.headers or {}))

    @app.exception_handler(OperationTimeout)
    async def timeout_error(_: Request, exc: OperationTimeout) -> JSONResponse:
        return error_response(
            503, "timeout", "The service is overloaded; try again.", {"Retry-After": "1"}
        )

    @app.exception_handler(DatabaseUnavailable)
    async def db_down(_: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return error_response(503, "unavailable", "The database is unavailable; try again.")

"""The one ASGI middleware around every request.

Pure ASGI rather than ``BaseHTTPMiddleware``: it wraps ``send`` and ``receive`` without
buffering or an extra task, which matters on the hot path of a load test. It gives every
response its request id, security headers and ``Server-Timing``; refuses bodies over the
limit and non-JSON bodies with the contract's error shape, and sheds load while the event
loop lags (``admission.py``); records the server-side timing in
the performance tracker; and writes one log line per request with its id.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from velro import timing
from velro.headers import SECURITY_HEADERS

if TYPE_CHECKING:
    from velro.admission import Admission
    from velro.tracker import Tracker

__all__ = ["VelroMiddleware", "error_body"]

log = logging.getLogger("velro.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def error_body(code: str, message: str, request_id: str) -> bytes:
    return json.dumps(
        {"error": {"code": code, "message": message, "request_id": request_id}}
    ).encode()


def _route_template(scope: Scope) -> str:
    """The matched route's full path template (``/api/v1/projects/{project_id}``).

    FastAPI 0.16x keeps an included router's prefix out of ``scope["route"].path``; the full
    template is on its effective route context. Parameters are named ``{id}`` as in the load
    scenarios' request names and the budgets file, so one name means one endpoint across the
    suite. Unmatched paths share one name, so a scan of random URLs cannot grow the tracker
    without bound.
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(context, "path", None) or getattr(scope.get("route"), "path", None)
    return _suite_name(path) if isinstance(path, str) else "unmatched"


@functools.lru_cache(maxsize=256)
def _suite_name(template: str) -> str:
    return _PARAM.sub("{id}", template)


_PARAM = re.compile(r"\{[^}]+\}")


# Served even while shedding: an operator must see an overloaded service
_ALWAYS_SERVED = frozenset({"/health", "/metrics", "/api/v1/performance/metrics"})
_OVERLOADED = (503, "overloaded", "The service is overloaded; try again in a second.")
_RETRY_AFTER = [(b"retry-after", b"1")]


class _BodyTooLarge(Exception):
    pass


@dataclass(slots=True)
class _Responder:
    """One request's ``send`` and ``receive`` (as starlette's ``GZipResponder``): ``send`` adds
    the response headers every answer carries and notes the status; ``receive`` counts the
    body against the limit."""

    _receive: Receive
    _send: Send
    ctx: timing.RequestContext
    max_body_bytes: int
    received: int = 0
    status: int = 500
    started: bool = False

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.started = True
            out = [
                (k, v)
                for k, v in message.get("headers", [])
                if k not in (b"server", b"x-powered-by")
            ]
            out += SECURITY_HEADERS
            out.append((b"x-request-id", self.ctx.request_id.encode("latin-1")))
            out.append((b"server-timing", self.ctx.server_timing().encode("latin-1")))
            message["headers"] = out
        await self._send(message)

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_body_bytes:
                raise _BodyTooLarge
        return message


class VelroMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        tracker: Tracker | None,
        admission: Admission | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.tracker = tracker
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else str(uuid.uuid4())
        ctx = timing.RequestContext(request_id=rid)
        token = timing._set(ctx)
        responder = _Responder(receive, send, ctx, self.max_body_bytes)
        t0 = time.perf_counter()
        try:
            await self._respond(scope, headers, responder)
        finally:
            self._record(scope, responder.status, (time.perf_counter() - t0) * 1000.0, rid)
            timing._reset(token)

    async def _respond(
        self, scope: Scope, headers: dict[bytes, bytes], responder: _Responder
    ) -> None:
        """Refuse what the service does not take, else run the app through the responder."""
        send, rid = responder.send, responder.ctx.request_id
        if (
            self.admission is not None
            and scope["path"] not in _ALWAYS_SERVED
            and self.admission.refuse()
        ):
            await self._send_error(send, *_OVERLOADED, rid, _RETRY_AFTER)
            return
        refusal = self._refuse(scope, headers)
        if refusal is not None:
            await self._send_error(send, *refusal, rid)
            return
        try:
            await self.app(scope, responder.receive, send)
        except _BodyTooLarge:
            await self._send_error(send, *self._too_large(), rid)
        except Exception:
            # Answered here, inside the request's context, so the 500 carries its request id
            # and the headers; never a stack trace to the client, always one in the log.
            log.exception("unhandled error request_id=%s", rid)
            if responder.started:
                raise
            await self._send_error(
                send, 500, "internal_error", "Something went wrong on our side.", rid
            )

    def _record(self, scope: Scope, status: int, elapsed_ms: float, rid: str) -> None:
        name = f"{scope['method']} {_route_template(scope)}"
        if self.tracker is not None:
            self.tracker.record(name, status, elapsed_ms)
        log.info(
            "%s %s %d %.2fms request_id=%s", scope["method"], scope["path"], status, elapsed_ms, rid
        )

    def _refuse(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str, str] | None:
        if scope["method"] not in _BODY_METHODS:
            return None
        length = headers.get(b"content-length")
        if length is not None:
            try:
                if int(length) > self.max_body_bytes:
                    return self._too_large()
                has_body = int(length) > 0
            except ValueError:
                return (400, "invalid_request", "Content-Length is not a number.")
        else:
            has_body = b"transfer-encoding" in headers
        if has_body:
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if ctype != b"application/json":
                return (
                    415,
                    "unsupported_media_type",
                    "Send the body as JSON with Content-Type: application/json.",
                )
        return None

    def _too_large(self) -> tuple[int, str, str]:
        return (413, "payload_too_large", f"The body is over {self.max_body_bytes} bytes.")

    async def _send_error(
        self,
        send: Send,
        status: int,
        code: str,
        message: str,
        rid: str,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        body = error_body(code, message, rid)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *(extra or ()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

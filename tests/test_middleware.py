"""What the middleware gives every response: the request id, the security headers, the error
shape, and a health check that says what is down."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from velro.settings import Settings


def test_every_response_carries_request_id_and_security_headers(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> None:
    server = live_server(make_settings())
    with httpx.Client(base_url=server.url) as client:
        ok = client.get("/health", headers={"X-Request-ID": "abc.DEF-123_x"})
        missing = client.get("/api/v1/nowhere", headers={"X-Request-ID": "bad id!"})
    assert ok.status_code == 200
    assert ok.headers["x-request-id"] == "abc.DEF-123_x"
    assert ok.json() == {"status": "ok", "checks": {"database": "ok", "redis": "disabled"}}
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] != "bad id!"
    assert missing.json()["error"]["request_id"] == missing.headers["x-request-id"]
    for response in (ok, missing):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["server-timing"].startswith("app;dur=")
        assert "server" not in response.headers
        assert "x-powered-by" not in response.headers


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({"content-type": "text/plain"}, b"hello", 415, "unsupported_media_type"),
        ({"content-type": "application/json"}, b"x" * (64 * 1024 + 1), 413, "payload_too_large"),
    ],
)
def test_bodies_refused_before_any_handler_get_the_error_shape(
    make_settings: Callable[..., Settings],
    live_server: Callable[..., Any],
    headers: dict[str, str],
    body: bytes,
    status: int,
    code: str,
) -> None:
    server = live_server(make_settings())
    r = httpx.post(f"{server.url}/api/v1/auth/login", headers=headers, content=body)
    assert r.status_code == status
    assert r.json()["error"]["code"] == code
    assert r.headers["x-request-id"] == r.json()["error"]["request_id"]


def test_health_says_redis_down_and_still_serves(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> None:
    from tests.helpers import free_port

    # nothing listens on this port: Redis is configured but down
    server = live_server(make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    r = httpx.get(f"{server.url}/health")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok", "redis": "down"}


def test_an_unexpected_error_is_a_500_in_the_error_shape_with_the_request_id(
    make_settings: Callable[..., Settings],
) -> None:
    from tests.helpers import LiveServer
    from velro import create_app

    app = create_app(make_settings())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug, with a secret in its message")

    server = LiveServer(app).start()
    try:
        r = httpx.get(f"{server.url}/boom", headers={"X-Request-ID": "trace-1"})
    finally:
        server.stop()
    assert r.status_code == 500
    assert r.json() == {
        "error": {
            "code": "internal_error",
            "message": "Something went wrong on our side.",
            "request_id": "trace-1",
        }
    }
    assert "secret" not in r.text
    assert r.headers["x-content-type-options"] == "nosniff"

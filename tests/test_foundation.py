"""The foundation: settings, the database singleton, the executor, the middleware."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from velro.db import Database
from velro.errors import ConfigError, OperationTimeout
from velro.executor import Executor
from velro.settings import Settings


def test_settings_are_read_once_from_velro_variables() -> None:
    s = Settings.from_env(
        {"VELRO_PROFILE": "degraded", "VELRO_EXECUTOR_WORKERS": "7", "VELRO_JWT_SECRET": "s" * 40}
    )
    assert s.profile == "degraded"
    assert s.executor_workers == 7
    with pytest.raises(AttributeError):
        s.profile = "fixed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"VELRO_PROFILE": "fast"}, "VELRO_PROFILE"),
        ({"VELRO_EXECUTOR_WORKERS": "many"}, "VELRO_EXECUTOR_WORKERS"),
        ({"VELRO_DB_TIMEOUT_S": "-1"}, "VELRO_DB_TIMEOUT_S"),
        ({"VELRO_DATABASE_URL": "mysql://x"}, "VELRO_DATABASE_URL"),
    ],
)
def test_a_bad_setting_names_itself(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def test_the_database_singleton_is_created_once_under_contention(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    seen: list[int] = []
    barrier = threading.Barrier(8)

    def grab() -> None:
        barrier.wait()
        seen.append(id(Database.instance(url).engine))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1
    Database.reset()


def test_a_timed_out_call_is_counted_and_does_not_start_late() -> None:
    ran: list[str] = []
    blocker = threading.Event()

    async def scenario() -> None:
        ex = Executor(1, {"db": 0.05})
        # one worker, held by the first call: the second waits in the queue past its deadline
        first = asyncio.ensure_future(ex.run("db", blocker.wait, 1.0))
        await asyncio.sleep(0.01)  # let the first call take the worker
        with pytest.raises(OperationTimeout):
            await ex.run("db", ran.append, "late")
        blocker.set()
        with pytest.raises(OperationTimeout):
            await first
        stats = ex.stats()
        ex.shutdown()
        assert stats.timeouts == 2
        assert stats.queued == 0

    asyncio.run(scenario())
    assert ran == []


def test_sqlite_stops_a_query_past_its_deadline(tmp_path: Any) -> None:
    """The server-side half of the timeout: SQLite's progress handler interrupts the query."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    db = Database(f"sqlite:///{tmp_path / 'slow.db'}")

    def endless(conn: Any) -> Any:
        # a recursive CTE that would count for a very long time
        return conn.execute(
            text(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                "SELECT count(*) FROM c"
            )
        ).scalar()

    async def scenario() -> float:
        ex = Executor(1, {"db": 0.2})
        start = time.monotonic()
        with pytest.raises(OperationTimeout):
            await ex.run("db", db.call, endless)
        # the worker must come free soon after the deadline: the next call runs
        assert await ex.run("db", lambda: 42) == 42
        ex.shutdown()
        return time.monotonic() - start

    elapsed = asyncio.run(scenario())
    assert elapsed < 5  # not bounded by the query, which would run for minutes
    db.close()

    # and called directly, past its deadline, the query is interrupted by SQLite itself
    from velro.executor import _local

    _local.deadline = time.monotonic() - 1
    try:
        with pytest.raises(OperationalError, match="interrupted"):
            db.call(endless)
    finally:
        _local.deadline = None


@pytest.mark.postgres
def test_postgres_stops_a_query_past_statement_timeout(postgres_url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    db = Database(postgres_url, timeout_s=0.3)
    start = time.monotonic()
    with pytest.raises(OperationalError, match="statement timeout"):
        db.call(lambda conn: conn.execute(text("SELECT pg_sleep(10)")))
    assert time.monotonic() - start < 5
    db.close()


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
    from tests.conftest import free_port

    # nothing listens on this port: Redis is configured but down
    server = live_server(make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    r = httpx.get(f"{server.url}/health")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok", "redis": "down"}


def test_an_unexpected_error_is_a_500_in_the_error_shape_with_the_request_id(
    make_settings: Callable[..., Settings],
) -> None:
    from tests.conftest import LiveServer
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

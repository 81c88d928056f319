"""Shared fixtures: real PostgreSQL, real Redis, real uvicorn servers on loopback sockets.

A test that needs PostgreSQL or Redis skips with a reason when the server does not answer,
except under ``CI=true``, where an absent service fails the run (it must not pass by
skipping). Every test run gets its own PostgreSQL database and its own Redis key prefix, and
removes them afterwards: the servers are shared with other sessions.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# before any test module imports locust: keep the session's standard library unpatched
import tests.locust_inprocess  # noqa: F401
from tests.helpers import Api, LiveServer, free_port, own_redis_prefix

POSTGRES_ADMIN_URL = os.environ.get(
    "VELRO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("VELRO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"

# Cheap argon2id parameters for tests that hash many passwords; the defaults (OWASP minimum)
# are exercised by the tests that check them.
FAST_HASH = {"argon2_memory_kib": 1024, "argon2_time_cost": 1}


# The suite's packages are velro_perf.scenarios and velro_perf.reports. The clone's root is on
# sys.path in a test run (pytest's rootdir, for tests.helpers), where the folders scenarios/
# and reports/ would import a second copy of every module under the old name: a second class
# of each (isinstance fails across them) and a second set of Locust event handlers.
OLD_TOP_LEVEL = ("scenarios", "reports")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when any module was imported under an old top-level name."""
    twice = sorted(m for m in sys.modules if m.split(".")[0] in OLD_TOP_LEVEL)
    if twice:
        print(f"\nmodules imported under an old top-level name: {', '.join(twice)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _absent(what: str, why: object) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but did not answer: {why}")
    pytest.skip(f"{what} not available: {why}")


# -- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> str:
    import psycopg

    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        _absent("PostgreSQL", exc)
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards (SQLAlchemy URL)."""
    import psycopg

    name = f"velro_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        from velro.db import Database

        Database.reset()
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- Redis ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        _absent("Redis", exc)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_server: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    with own_redis_prefix(redis_server, "velro_test") as prefix:
        yield prefix


@pytest.fixture
def redis_settings(
    make_settings: Callable[..., Any], redis_server: str, redis_prefix: str
) -> Callable[..., Any]:
    """``make_settings`` with the shared Redis and this test's own key prefix."""

    def make(**overrides: Any) -> Any:
        return make_settings(redis_url=redis_server, redis_prefix=redis_prefix, **overrides)

    return make


@pytest.fixture
def own_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of the test's own, on a free port, that the test may stop or kill.

    The shared Redis is never stopped: an outage is this private server dying (or hanging,
    SIGSTOP; it is continued before it is killed).
    """
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        _absent("redis-server", "not installed")
    port = free_port()
    proc = subprocess.Popen(
        [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url, socket_timeout=0.5).ping()
                break
            except (redis.RedisError, OSError):
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"the test's redis-server on port {port} did not start")
                time.sleep(0.02)
        yield url, proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=10)


# -- settings and live servers ------------------------------------------------------------


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Any]:
    """Settings for a test: a fresh SQLite file, no Redis, cheap hashing, unless overridden."""
    from velro.settings import Settings

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path / f'velro-{uuid.uuid4().hex[:8]}.db'}",
            "redis_url": "",
            "jwt_secret": "test-secret-" + "x" * 32,
            "log_level": "warning",
            **FAST_HASH,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_settings(request: pytest.FixtureRequest, make_settings: Callable[..., Any]) -> Any:
    """Settings on SQLite, and on PostgreSQL where the suite has it (`postgres` marker)."""
    if request.param == "postgres":
        return make_settings(database_url=request.getfixturevalue("postgres_url"))
    return make_settings()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start ``create_app(settings)`` on a real socket: ``live_server(settings) -> server``."""
    from velro import create_app

    started: list[LiveServer] = []

    def start(settings: Any) -> LiveServer:
        server = LiveServer(create_app(settings)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    from velro.db import Database

    Database.reset()


@pytest.fixture
def api(live_server: Callable[..., LiveServer]) -> Api:
    """``api.start(settings)``, ``api.register(client, email)``, ``api.assert_error(r, ...)``."""
    return Api(live_server)

"""Shared fixtures of the microbenchmarks: one event loop, real Redis, real PostgreSQL.

Async code is driven with ``loop.run_until_complete`` on one long-lived loop (the ``run``
fixture), never ``asyncio.run`` per round: creating and closing a loop costs far more than
most of what is measured here.

A benchmark that needs PostgreSQL or Redis skips with a reason when the server does not
answer, except under ``CI=true``, where an absent service fails the run: CI must not pass by
skipping. The session uses its own Redis key prefix and its own PostgreSQL database
(``velro_bench_<random>``) and removes both at the end; the servers are shared.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from velro_perf.target import own_redis_prefix

__all__ = ["IN_CI", "JWT_SECRET", "absent"]

POSTGRES_ADMIN_URL = os.environ.get(
    "VELRO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("VELRO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"

# The secret the token benchmarks sign with (HS256 wants at least 32 bytes, RFC 7518 3.2).
JWT_SECRET = "bench-secret-" + "x" * 40


def absent(what: str, why: object) -> None:
    """Skip (locally) or fail (under CI=true) a benchmark whose server did not answer."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but did not answer: {why}")
    pytest.skip(f"{what} not available: {why}")


@pytest.fixture(scope="session")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The one event loop every async benchmark runs on."""
    lp = asyncio.new_event_loop()
    yield lp
    lp.run_until_complete(lp.shutdown_asyncgens())
    lp.close()


@pytest.fixture(scope="session")
def run(loop: asyncio.AbstractEventLoop) -> Callable[[Awaitable[Any]], Any]:
    """``run(coro)``: drive one coroutine to completion on the session loop."""
    return loop.run_until_complete


@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("velro-bench")


@pytest.fixture(scope="session")
def sqlite_url(bench_dir: Path) -> str:
    """A SQLite file of the session's own, with velro's schema."""
    from velro.db import Database

    url = f"sqlite:///{bench_dir / 'bench.db'}"
    Database.instance(url).create_all()
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
        client.ping()
        client.close()
    except (redis.RedisError, OSError) as exc:
        absent("Redis", exc)
    return REDIS_URL


@pytest.fixture(scope="session")
def redis_prefix(redis_url: str) -> Iterator[str]:
    """This session's own key prefix; every key under it is deleted at the end."""
    with own_redis_prefix(redis_url, "velro_bench") as prefix:
        yield prefix


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database ``velro_bench_<random>`` of this session's own (SQLAlchemy URL), dropped after."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        absent("PostgreSQL", exc)
    name = f"velro_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}/{name}"
    try:
        from velro.db import Database

        Database.instance(url).create_all()
        yield url
    finally:
        from velro.db import Database

        Database.reset()
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def make_settings(sqlite_url: str) -> Callable[..., Any]:
    """Settings for a benchmark: the session's SQLite file, no Redis, unless overridden."""
    from velro.settings import Settings

    def make(**overrides: Any) -> Any:
        values: dict[str, Any] = {
            "database_url": sqlite_url,
            "redis_url": "",
            "jwt_secret": JWT_SECRET,
            "log_level": "warning",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture(scope="session")
def rounds(request: pytest.FixtureRequest) -> Callable[[int], int]:
    """``rounds(full)``: rounds for a ``pedantic`` benchmark, a handful in quick mode.

    ``benchmark.pedantic`` ignores ``--benchmark-max-time`` by design, so the quick mode of
    ``velro-perf bench`` (max-time 0.01 s) is detected here and honoured.
    """
    quick = float(request.config.getoption("benchmark_max_time")) < 0.1

    def pick(full: int) -> int:
        return min(full, 3) if quick else full

    return pick

"""The database singleton and its calls: created once, timed out, stopped past a deadline."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from velro.db import Database
from velro.errors import OperationTimeout
from velro.executor import Executor


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

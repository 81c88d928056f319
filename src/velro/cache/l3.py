"""L3: the ``cache_entries`` table, shared by every process even without Redis.

Reads and writes go through the executor (kind ``"db"``), never on the event loop. The upsert
is written per dialect (SQLite and PostgreSQL both have ``INSERT ... ON CONFLICT DO UPDATE``).
Expired rows are never answered; they are purged at most once a minute, on a write.

An invalidation leaves a tombstone row (value ``-``, which no JSON text is) for a few seconds;
a write-back does not replace a live tombstone, so a computation that read the old value
before the invalidation cannot store it after.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from velro import timing
from velro.db import Database
from velro.db.schema import cache_entries
from velro.executor import Executor

__all__ = ["TOMBSTONE", "L3Cache"]

_PURGE_EVERY_S = 60.0
TOMBSTONE = "-"


class L3Cache:
    def __init__(self, db: Database, executor: Executor, *, ttl_s: float) -> None:
        self.db = db
        self.executor = executor
        self.ttl_s = ttl_s
        self.errors = 0
        self._insert: Any = sqlite.insert if db.is_sqlite else postgresql.insert
        self._last_purge = time.time()

    async def get(self, skey: str) -> tuple[float, str] | None:
        """``(deadline, JSON text)`` of an unexpired entry, else ``None``."""
        with timing.timed("db"):
            row: tuple[float, str] | None = await self.executor.run(
                "db", self.db.call, _select, skey, time.time()
            )
        return row

    async def set(self, skey: str, encoded: str, deadline: float, now: float) -> None:
        expires_at = min(now + self.ttl_s, deadline)
        if expires_at <= now:
            return
        purge = now - self._last_purge >= _PURGE_EVERY_S
        if purge:
            self._last_purge = now
        await self.executor.run("db", self.db.call, self._upsert, skey, encoded, expires_at, purge)

    async def tombstone(self, skey: str, ttl_s: float) -> None:
        """Replace the entry with a tombstone for ``ttl_s``: the key reads as absent."""
        await self.executor.run("db", self.db.call, self._put, skey, time.time() + ttl_s)

    def _put(self, conn: Connection, skey: str, expires_at: float) -> None:
        stmt = self._insert(cache_entries).values(key=skey, value=TOMBSTONE, expires_at=expires_at)
        stmt = stmt.on_conflict_do_update(
            index_elements=[cache_entries.c.key],
            set_={"value": stmt.excluded.value, "expires_at": stmt.excluded.expires_at},
        )
        conn.execute(stmt)

    def _upsert(
        self, conn: Connection, skey: str, encoded: str, expires_at: float, purge: bool
    ) -> None:
        stmt = self._insert(cache_entries).values(key=skey, value=encoded, expires_at=expires_at)
        stmt = stmt.on_conflict_do_update(
            index_elements=[cache_entries.c.key],
            set_={"value": stmt.excluded.value, "expires_at": stmt.excluded.expires_at},
            # never over a live tombstone (see the module docstring)
            where=or_(
                cache_entries.c.value != TOMBSTONE, cache_entries.c.expires_at <= time.time()
            ),
        )
        conn.execute(stmt)
        if purge:
            conn.execute(delete(cache_entries).where(cache_entries.c.expires_at < time.time()))


def _select(conn: Connection, skey: str, now: float) -> tuple[float, str] | None:
    row = conn.execute(
        select(cache_entries.c.expires_at, cache_entries.c.value).where(
            cache_entries.c.key == skey, cache_entries.c.expires_at > now
        )
    ).first()
    if row is None or row[1] == TOMBSTONE:
        return None
    return float(row[0]), str(row[1])

"""The audit log: every denial, grant, revocation and membership change, with its request id.

Changes (grant, revoke, membership, project deletion) are written in the same transaction as
the change itself, so a change is never without its audit row (``write_entry``). Denials are
the hot path (a fifth of the authorization traffic of the load workload is for projects the
caller may not read), so they are buffered and written in batches with one ``executemany`` per
``flush_interval_s`` (``AuditBuffer``) instead of one transaction per request: on SQLite every
transaction would queue behind the one writer. A denial reaches the table within
``flush_interval_s`` (0.1 s) plus one write; ``AuditBuffer.close`` writes what is left at
shutdown.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from velro import timing
from velro.db.schema import audit_log

__all__ = ["AuditBuffer", "entry", "write_entries", "write_entry"]

log = logging.getLogger("velro.audit")

DbCall = Callable[[Callable[..., Any], Any], Awaitable[Any]]


def entry(
    action: str,
    *,
    actor_id: str | None,
    project_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One audit row, stamped now with the current request's id."""
    return {
        "at": datetime.now(UTC),
        "request_id": timing.request_id(),
        "actor_id": actor_id,
        "action": action,
        "project_id": project_id,
        "detail": json.dumps(detail, sort_keys=True) if detail is not None else None,
    }


def write_entries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(audit_log.insert(), list(rows))


def write_entry(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(audit_log.insert(), row)


class AuditBuffer:
    """Collects audit rows on the event loop and writes them in batches off it."""

    def __init__(
        self, db_call: DbCall, *, flush_interval_s: float = 0.1, max_batch: int = 1000
    ) -> None:
        self._db_call = db_call
        self._interval = flush_interval_s
        self._max_batch = max_batch
        self._pending: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.lost = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, row: dict[str, Any]) -> None:
        self._pending.append(row)
        if self._task is None or self._task.done():
            # a fresh context: the flush's database time must not be added to the
            # Server-Timing of whichever request happened to start it
            self._task = asyncio.get_running_loop().create_task(
                self._flush_later(), context=contextvars.Context()
            )

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._interval)
        while self._pending:
            await self.flush()

    async def flush(self) -> None:
        rows, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
        if not rows:
            return
        try:
            await self._db_call(write_entries, rows)
        except Exception:
            # an audit write that fails must not fail the requests it records; say so loudly
            self.lost += len(rows)
            log.exception("could not write %d audit rows; they are lost", len(rows))
        else:
            self.written += len(rows)

    async def close(self) -> None:
        """Write every pending row (call at shutdown)."""
        task, self._task = self._task, None
        if task is not None:
            await task  # at most one interval, then its writes: cancelling could lose rows
        while self._pending:
            await self.flush()

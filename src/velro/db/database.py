"""The database singleton: one engine, with its connection pool, per process and URL.

The story's fix was "thread-safe double-checked locking"; here it is done once, in one
place. The engine is created lazily on first use, by exactly one thread, and closed by the
app's lifespan. ``Database.reset()`` closes every instance, for tests.

The ``degraded`` profile reproduces the original failure with the real mechanism: a new
engine and a new connection for every unit of work, no pool.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from velro.db.schema import metadata
from velro.errors import VelroError
from velro.executor import current_deadline

__all__ = ["Database", "DatabaseUnavailable"]

P = ParamSpec("P")
T = TypeVar("T")

# How often (in SQLite virtual-machine instructions) the progress handler looks at the
# deadline: often enough to stop within a millisecond, rarely enough to cost nothing.
_SQLITE_PROGRESS_STEPS = 10_000


class DatabaseUnavailable(VelroError):
    """The database did not answer."""


class Database:
    _instances: ClassVar[dict[tuple[str, bool], Database]] = {}
    _instances_lock: ClassVar[threading.RLock] = threading.RLock()

    def __init__(
        self, url: str, *, pool_size: int = 20, timeout_s: float = 5.0, pooled: bool = True
    ) -> None:
        self.url = url
        self.pooled = pooled
        self._pool_size = pool_size
        self._timeout_s = timeout_s
        self._engine: Engine | None = None
        self._lock = threading.RLock()

    # -- the singleton -------------------------------------------------------------------

    @classmethod
    def instance(
        cls, url: str, *, pool_size: int = 20, timeout_s: float = 5.0, pooled: bool = True
    ) -> Database:
        """The process's one ``Database`` for ``url`` (double-checked locking)."""
        key = (url, pooled)
        db = cls._instances.get(key)
        if db is None:
            with cls._instances_lock:
                db = cls._instances.get(key)
                if db is None:
                    db = cls(url, pool_size=pool_size, timeout_s=timeout_s, pooled=pooled)
                    cls._instances[key] = db
        return db

    @classmethod
    def reset(cls) -> None:
        """Close and forget every instance (tests, and a forked worker)."""
        with cls._instances_lock:
            for db in cls._instances.values():
                db.close()
            cls._instances.clear()

    @property
    def engine(self) -> Engine:
        engine = self._engine
        if engine is None:
            with self._lock:
                engine = self._engine
                if engine is None:
                    engine = self._engine = self._create_engine(pooled=self.pooled)
        return engine

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    # -- units of work -------------------------------------------------------------------

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A connection in a transaction, committed on success, rolled back on error."""
        # degraded: a new engine and connection, what the story's original code did per request
        engine = self.engine if self.pooled else self._create_engine(pooled=False)
        try:
            with engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            if _is_connection_error(exc):
                raise DatabaseUnavailable(
                    f"database unavailable: {exc.__class__.__name__}"
                ) from exc
            raise
        finally:
            if not self.pooled:
                engine.dispose()

    def call(
        self, func: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``func(conn, *args)`` in one transaction (called from an executor worker)."""
        with self.begin() as conn:
            return func(conn, *args, **kwargs)

    def ping(self) -> None:
        with self.begin() as conn:
            conn.execute(text("SELECT 1"))

    def create_all(self) -> None:
        if self.is_sqlite:
            path = make_url(self.url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        metadata.create_all(self.engine)

    # -- engines -------------------------------------------------------------------------

    def _create_engine(self, *, pooled: bool) -> Engine:
        kwargs: dict[str, Any] = {}
        if not pooled:
            kwargs["poolclass"] = NullPool
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": self._timeout_s}
            if pooled:
                kwargs.update(pool_size=self._pool_size, max_overflow=0)
            engine = create_engine(self.url, **kwargs)
            event.listen(engine, "connect", _configure_sqlite)
            return engine
        # Pair the executor's client-side timeout with a server-side one, so that a query the
        # client gave up on stops holding a connection and a worker.
        timeout_ms = int(self._timeout_s * 1000)
        kwargs["connect_args"] = {
            "options": f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}",
            "connect_timeout": max(1, int(self._timeout_s)),
        }
        if pooled:
            kwargs.update(pool_size=self._pool_size, max_overflow=0, pool_timeout=self._timeout_s)
        return create_engine(self.url, **kwargs)


def _configure_sqlite(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the one writer; NORMAL is durable across a process crash.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
    # SQLite has no statement_timeout: interrupt a query once its caller's deadline passed.
    dbapi_conn.set_progress_handler(_past_deadline, _SQLITE_PROGRESS_STEPS)


def _past_deadline() -> int:
    deadline = current_deadline()
    return 1 if deadline is not None and time.monotonic() > deadline else 0


def _is_connection_error(exc: SQLAlchemyError) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError

    if isinstance(exc, InterfaceError):
        return True
    if isinstance(exc, OperationalError):
        message = str(exc.orig).lower()
        return any(
            s in message
            for s in ("connection", "could not connect", "unable to open", "server closed")
        )
    return False

"""One typed way into the thread pool, with a timeout per kind of operation.

Every blocking call (database, password hashing) goes through ``Executor.run``. The timeout
is paired with a deadline the worker can see (``current_deadline``): a call that waited in
the queue past its deadline is dropped before it starts, and the database layer turns the
remaining time into a server-side limit (PostgreSQL ``statement_timeout``, an SQLite progress
handler), so a call the client gave up on does not hold a worker for ever.

A kind may have a pool of its own (``pools``): password hashing is CPU-bound, and 20
argon2id computations at once on a 2-core machine take every core from the event loop (seen
in a 10,000-user ramp: requests waited seconds in socket buffers while the handlers' own
times stayed at milliseconds). Its pool works within the hashing budget that every worker
process shares (``hashbudget.py``), so a burst of logins queues for a hash, or is refused,
instead of starving everything else.

The ``degraded`` profile runs the same calls inline, on the event loop, as the story's
original service did.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from velro.errors import OperationTimeout

__all__ = ["Executor", "ExecutorStats", "current_deadline"]

P = ParamSpec("P")
T = TypeVar("T")

_local = threading.local()


def current_deadline() -> float | None:
    """The ``time.monotonic()`` deadline of the call running on this thread, if any."""
    return getattr(_local, "deadline", None)


@dataclass(frozen=True, slots=True)
class ExecutorStats:
    workers: int
    busy: int
    queued: int
    timeouts: int
    completed: int


class Executor:
    def __init__(
        self,
        workers: int,
        timeouts: Mapping[str, float],
        *,
        pools: Mapping[str, int] | None = None,
        inline: bool = False,
    ) -> None:
        self._timeouts = dict(timeouts)
        self._inline = inline
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="velro-exec")
        self._own_pools = {
            kind: ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"velro-{kind}")
            for kind, size in (pools or {}).items()
        }
        self._workers = workers + sum((pools or {}).values())
        self._lock = threading.Lock()
        self._submitted = 0
        self._started = 0
        self._busy = 0
        self._completed = 0
        self._timed_out = 0

    def timeout_for(self, kind: str) -> float:
        try:
            return self._timeouts[kind]
        except KeyError:
            raise ValueError(
                f"no timeout configured for operation kind {kind!r}; "
                f"known kinds: {', '.join(sorted(self._timeouts))}"
            ) from None

    async def run(self, kind: str, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``func`` in a worker; raise ``OperationTimeout`` after ``kind``'s timeout."""
        timeout = self.timeout_for(kind)
        deadline = time.monotonic() + timeout
        if self._inline:
            # degraded: block the event loop, exactly the failure the story describes
            with self._lock:
                self._submitted += 1
            try:
                return self._call(deadline, kind, timeout, func, *args, **kwargs)
            except OperationTimeout:
                self._count_timeout()
                raise
        with self._lock:
            self._submitted += 1
        call = functools.partial(self._call, deadline, kind, timeout, func, *args, **kwargs)
        future = self._own_pools.get(kind, self._pool).submit(call)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except OperationTimeout:
            self._count_timeout()
            raise
        except TimeoutError:
            if future.cancel():  # still queued: it frees its slot and never starts
                with self._lock:
                    self._submitted -= 1
            self._count_timeout()
            raise OperationTimeout(kind, timeout) from None

    def _call(
        self,
        deadline: float,
        kind: str,
        timeout: float,
        func: Callable[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        with self._lock:
            self._started += 1
            self._busy += 1
        try:
            if time.monotonic() >= deadline:
                # waited in the queue past its deadline: the caller has given up already
                raise OperationTimeout(kind, timeout)
            _local.deadline = deadline
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                # the server-side half of the timeout fired (a statement timeout, an
                # interrupted SQLite query): report it as what it is
                if time.monotonic() >= deadline:
                    raise OperationTimeout(kind, timeout) from exc
                raise
            finally:
                _local.deadline = None
        finally:
            with self._lock:
                self._busy -= 1
                self._completed += 1

    def _count_timeout(self) -> None:
        with self._lock:
            self._timed_out += 1

    def stats(self) -> ExecutorStats:
        with self._lock:
            return ExecutorStats(
                workers=self._workers,
                busy=self._busy,
                queued=max(self._submitted - self._started, 0),
                timeouts=self._timed_out,
                completed=self._completed,
            )

    def shutdown(self) -> None:
        for pool in (self._pool, *self._own_pools.values()):
            pool.shutdown(wait=True, cancel_futures=True)

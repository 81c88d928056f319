"""Single-flight: concurrent misses for one key compute once; the others await that result.

The work runs in a task of its own, not in the first caller's coroutine, so a caller that is
cancelled (a client that hung up) does not cancel the computation the others are waiting for.
The work hands its value over with ``Flight.resolve`` as soon as it has one and may then go on
(the tiered cache writes the value back to L2 and L3 after the callers have it). An exception
reaches every waiter and nothing is kept: the next call tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["Flight", "SingleFlight"]

T = TypeVar("T")

log = logging.getLogger("velro.cache")


class Flight(Generic[T]):
    """One computation in progress; ``stale`` is set when the key was invalidated meanwhile."""

    __slots__ = ("future", "stale", "task")

    def __init__(self, future: asyncio.Future[T]) -> None:
        self.future = future
        self.stale = False
        self.task: asyncio.Task[None] | None = None

    def resolve(self, value: T) -> None:
        if not self.future.done():
            self.future.set_result(value)


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._flights: dict[str, Flight[T]] = {}
        self.coalesced = 0  # callers that joined a computation another caller started

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: str, work: Callable[[Flight[T]], Awaitable[None]]) -> T:
        """``work(flight)`` once per key at a time; every caller gets what it resolves."""
        flight = self._flights.get(key)
        if flight is None:
            loop = asyncio.get_running_loop()
            flight = Flight(loop.create_future())
            flight.future.add_done_callback(_retrieve)
            self._flights[key] = flight
            flight.task = loop.create_task(self._drive(key, flight, work))
        else:
            self.coalesced += 1
        # shield: one waiter's cancellation must not cancel the result the others wait for
        return await asyncio.shield(flight.future)

    def forget(self, key: str) -> Flight[T] | None:
        """Detach the key's computation (invalidation): later callers start a new one."""
        flight = self._flights.pop(key, None)
        if flight is not None:
            flight.stale = True
        return flight

    def pending(self) -> list[asyncio.Task[None]]:
        return [f.task for f in self._flights.values() if f.task is not None]

    async def _drive(
        self, key: str, flight: Flight[T], work: Callable[[Flight[T]], Awaitable[None]]
    ) -> None:
        try:
            await work(flight)
            if not flight.future.done():
                raise RuntimeError(f"single-flight work for {key!r} returned without a value")
        except asyncio.CancelledError:
            flight.future.cancel()
            raise
        except Exception as exc:
            if flight.future.done():
                # the callers have their value; what failed was the follow-up (a write-back)
                log.warning("cache follow-up for %r failed: %r", key, exc)
            else:
                flight.future.set_exception(exc)
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]


def _retrieve(future: asyncio.Future[Any]) -> None:
    # Mark an exception as seen even when every waiter was cancelled, so that asyncio does
    # not log "exception was never retrieved" for a failure each caller already handled.
    if not future.cancelled():
        future.exception()

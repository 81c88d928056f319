"""Load shedding: beyond what a process can serve, refuse new requests fast instead of queueing.

A saturated event loop does not see its queue: requests wait in the kernel's socket buffers
(10,000 keep-alive connections hold a lot of them) until the loop gets round to reading them,
and a client then waits seconds for an answer the handler computes in a millisecond. What the
loop can see is its own lag: how late a timer fires, which is about how long a request that
arrives now waits to be read. ``Admission`` samples it every ``interval_s`` and, while the
*smallest* lag of the last ``window`` samples is over ``max_lag_s`` (a standing queue, as
CoDel judges one, not one garbage-collector pause), the middleware answers new requests 503
``overloaded`` with ``Retry-After``, which costs a fraction of serving them, until the loop
has caught up. Monitoring routes are always served.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib

__all__ = ["Admission"]


class Admission:
    def __init__(self, max_lag_s: float, *, interval_s: float = 0.05, window: int = 4) -> None:
        self.max_lag_s = max_lag_s
        self.interval_s = interval_s
        self._lags: collections.deque[float] = collections.deque([0.0], maxlen=window)
        self.shedding = False
        self.shed = 0  # requests refused
        self.episodes = 0  # times shedding began
        self.max_lag_seen_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop it watches (once started)."""
        return self._task.get_loop() if self._task is not None else None

    def refuse(self) -> bool:
        """Whether to refuse the request arriving now (counted)."""
        if self.shedding:
            self.shed += 1
        return self.shedding

    def note_lag(self, lag_s: float) -> None:
        self._lags.append(lag_s)
        self.max_lag_seen_s = max(self.max_lag_seen_s, lag_s)
        was = self.shedding
        self.shedding = min(self._lags) > self.max_lag_s
        if self.shedding and not was:
            self.episodes += 1

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval_s)
            self.note_lag(max(0.0, loop.time() - start - self.interval_s))

    def stats(self) -> dict[str, float | int | bool]:
        return {
            "shedding": self.shedding,
            "shed": self.shed,
            "episodes": self.episodes,
            "max_lag_s": self.max_lag_s,
            "lag_s": self._lags[-1],
            "max_lag_seen_s": round(self.max_lag_seen_s, 4),
        }

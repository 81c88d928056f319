"""Per-request figures for ``Server-Timing``, and the request id, carried in context.

The middleware opens a ``RequestContext`` per request; handlers and services add to it
(``timed("db")``, ``note_cache("L1")``) without threading it through every call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["RequestContext", "current", "note_cache", "request_id", "timed"]


@dataclass(slots=True)
class RequestContext:
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    durations_ms: dict[str, float] = field(default_factory=dict)
    cache: str | None = None

    def add(self, name: str, ms: float) -> None:
        self.durations_ms[name] = self.durations_ms.get(name, 0.0) + ms

    def server_timing(self) -> str:
        app_ms = (time.perf_counter() - self.started) * 1000.0
        parts = [f"app;dur={app_ms:.3f}"]
        parts += [f"{name};dur={ms:.3f}" for name, ms in self.durations_ms.items()]
        if self.cache is not None:
            parts.append(f'cache;desc="{self.cache}"')
        return ", ".join(parts)


_current: ContextVar[RequestContext | None] = ContextVar("velro_request", default=None)


def current() -> RequestContext | None:
    return _current.get()


def request_id() -> str:
    ctx = _current.get()
    return ctx.request_id if ctx is not None else "-"


@contextmanager
def timed(name: str) -> Iterator[None]:
    """Add the wall time of the block to this request's ``name`` (``db``, ``hash``)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        ctx = _current.get()
        if ctx is not None:
            ctx.add(name, (time.perf_counter() - start) * 1000.0)


def note_cache(tier: str) -> None:
    """Record which cache tier answered (``L1``, ``L2``, ``L3`` or ``miss``); the best wins."""
    ctx = _current.get()
    if ctx is not None and (ctx.cache is None or _RANK[tier] < _RANK[ctx.cache]):
        ctx.cache = tier


_RANK = {"L1": 0, "L2": 1, "L3": 2, "miss": 3, "db": 3}


def _set(ctx: RequestContext | None) -> object:
    return _current.set(ctx)


def _reset(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]  # the token _set returned

"""The process's Redis connection, behind a circuit breaker.

Redis is optional and may fail at any time. Every call goes through ``RedisConnection.call``,
which answers ``None`` instead of raising when Redis is disabled, down, or slower than the
socket timeout; after a failure the breaker stays open for a cool-down, so an outage costs
each request at most one timeout instead of one per call: no failed requests and no stall
beyond the timeout (tests/test_cache_outage.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["RedisConnection", "RedisStatus"]

T = TypeVar("T")
RedisStatus = Literal["ok", "down", "disabled"]

log = logging.getLogger("velro.redis")


class RedisConnection:
    def __init__(
        self,
        url: str | None,
        *,
        prefix: str = "velro:",
        socket_timeout_s: float = 0.05,
        cooldown_s: float = 5.0,
    ) -> None:
        self.url = url or None
        self.prefix = prefix
        self._cooldown_s = cooldown_s
        self._open_until = 0.0
        self.failures = 0
        self.client: aioredis.Redis | None = None
        if self.url:
            self.client = aioredis.Redis.from_url(
                self.url,
                socket_timeout=socket_timeout_s,
                socket_connect_timeout=socket_timeout_s,
                health_check_interval=0,
            )

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def is_open(self) -> bool:
        """True while the breaker keeps calls away from a Redis that just failed."""
        return time.monotonic() < self._open_until

    async def call(self, fn: Callable[[aioredis.Redis], Awaitable[T]]) -> T | None:
        """``await fn(client)``, or ``None`` when Redis is disabled, down or too slow."""
        if self.client is None or self.is_open():
            return None
        try:
            result = await fn(self.client)
        except (RedisError, OSError, TimeoutError) as exc:
            self.failures += 1
            self._open_until = time.monotonic() + self._cooldown_s
            log.warning("redis call failed (%s); breaker open for %.1f s", exc, self._cooldown_s)
            return None
        self._open_until = 0.0
        return result

    async def status(self) -> RedisStatus:
        if self.client is None:
            return "disabled"
        ok = await self.call(lambda c: c.ping())
        return "ok" if ok else "down"

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()

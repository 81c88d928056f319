"""Failed-login rate limits, per account and per client address, with the ``limits`` package.

Only failures are counted (a successful login costs nothing), in a moving window: "10 a
minute" means no more than 10 failures in any 60 seconds, with no burst at a window edge.
A login is refused with 429 ``rate_limited`` and ``Retry-After`` (whole seconds until the
oldest failure leaves the window) before any password is hashed, so a locked-out account also
stops costing argon2 time.

State lives in Redis when Redis is configured, so every worker process and every app sharing
the ``redis_prefix`` counts together (``limits``' async storage with the redis-py client,
sharing the app's connection pool and its 50 ms socket timeout). Every Redis call goes
through the app's circuit breaker; while Redis is down the limiter counts in this process's
memory instead, so an outage degrades to per-process limits and never fails a login.
Accounts are keyed by the SHA-256 of the normalised email, so no address is stored in Redis.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from velro.errors import ApiError, ServiceConfigError
from velro.redis_conn import RedisConnection
from velro.settings import Settings

__all__ = ["LoginLimiter"]

T = TypeVar("T")


def _parse(name: str, value: str) -> RateLimitItem:
    try:
        return parse(value)
    except ValueError:
        raise ServiceConfigError(
            f"VELRO_{name.upper()} is {value!r}; give a rate such as '10/minute' or '300/hour'"
        ) from None


class LoginLimiter:
    def __init__(self, settings: Settings, redis: RedisConnection) -> None:
        self._per_account = _parse(
            "login_failures_per_account", settings.login_failures_per_account
        )
        self._per_address = _parse(
            "login_failures_per_address", settings.login_failures_per_address
        )
        self._memory_storage = MemoryStorage()
        self._memory = MovingWindowRateLimiter(self._memory_storage)
        self._redis_conn = redis
        self._redis: MovingWindowRateLimiter | None = None
        if redis.client is not None and redis.url is not None:
            storage = RedisStorage(
                "async+" + redis.url,
                implementation="redispy",
                # limits types its options as scalars, but passes them to redis-py, which
                # takes a pool: sharing the app's keeps one set of sockets and timeouts
                connection_pool=redis.client.connection_pool,  # type: ignore[arg-type]
                key_prefix=redis.key("limits"),
            )
            self._redis = MovingWindowRateLimiter(storage)
        self.rejections = 0

    async def _run(self, op: Callable[[MovingWindowRateLimiter], Awaitable[T]]) -> T:
        redis_limiter = self._redis
        if redis_limiter is not None:
            result = await self._redis_conn.call(lambda _client: op(redis_limiter))
            if result is not None:
                return result
        return await op(self._memory)

    @staticmethod
    def account_key(email: str) -> str:
        return hashlib.sha256(email.encode()).hexdigest()

    async def check(self, email: str, address: str) -> None:
        """Raise 429 ``rate_limited`` when the account or the address failed too often."""
        await self._check_one(self._per_account, "account", self.account_key(email))
        await self._check_one(self._per_address, "address", address)

    async def _check_one(self, item: RateLimitItem, scope: str, ident: str) -> None:
        if await self._run(lambda lim: lim.test(item, "login", scope, ident)):
            return
        stats = await self._run(lambda lim: lim.get_window_stats(item, "login", scope, ident))
        self.rejections += 1
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise ApiError(
            429,
            "rate_limited",
            f"Too many failed logins for this {scope}; try again in {retry_after} s.",
            {"Retry-After": str(retry_after)},
        )

    async def record_failure(self, email: str, address: str) -> None:
        account = self.account_key(email)
        await self._run(lambda lim: lim.hit(self._per_account, "login", "account", account))
        await self._run(lambda lim: lim.hit(self._per_address, "login", "address", address))

    def stats(self) -> dict[str, int]:
        return {"rejections": self.rejections}

    async def close(self) -> None:
        # the memory storage's expiry task would otherwise outlive the app's event loop
        timer = self._memory_storage.timer
        if timer is not None and not timer.done():
            timer.cancel()

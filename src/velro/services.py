"""The shared resources of one app: built in its lifespan, closed at its shutdown.

Nothing here is created at import time (as in the Flask tutorial's db.py):
``build_services(settings)`` makes the database singleton, the executor, the Redis connection,
the caches and the tracker for one app, and ``Services.close`` releases them. Handlers reach
them through ``services(request)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection
from starlette.requests import HTTPConnection

from velro import timing
from velro.cache import TieredCache
from velro.db import Database
from velro.executor import Executor
from velro.hashbudget import HashBudget
from velro.passwords import Passwords
from velro.ratelimit import LoginLimiter
from velro.redis_conn import RedisConnection
from velro.service_keys import ServiceKeys
from velro.settings import Settings
from velro.tokens import TokenCodec
from velro.tracker import Tracker

__all__ = ["Services", "build_services", "services"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(slots=True)
class Services:
    settings: Settings
    db: Database
    executor: Executor
    redis: RedisConnection
    cache: TieredCache
    tracker: Tracker
    # authentication (velro.passwords, .tokens, .ratelimit, .service_keys)
    passwords: Passwords
    tokens: TokenCodec
    limiter: LoginLimiter
    service_keys: ServiceKeys

    async def db_call(
        self, func: Callable[Concatenate[Connection, P], T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run ``func(conn, *args)`` in one transaction, off the event loop, timed as ``db``."""
        with timing.timed("db"):
            return await self.executor.run("db", self.db.call, func, *args, **kwargs)

    async def start(self) -> None:
        """Start what runs beside the requests (called once by the app's lifespan)."""
        await self.passwords.start()
        await self.service_keys.start()
        await self.cache.start()  # subscribe to other processes' cache invalidations

    async def close(self) -> None:
        await self.service_keys.close()
        await self.limiter.close()
        await self.cache.close()
        await self.redis.close()
        self.executor.shutdown()
        self.db.close()


def build_services(settings: Settings, tracker: Tracker | None = None) -> Services:
    db = Database.instance(
        settings.database_url,
        pool_size=settings.executor_workers,
        timeout_s=settings.db_timeout_s,
        pooled=not settings.is_degraded,
    )
    executor = Executor(
        settings.executor_workers,
        {"db": settings.db_timeout_s, "hash": settings.hash_timeout_s},
        pools={"hash": settings.hash_workers},
        inline=settings.is_degraded,
    )
    redis = RedisConnection(
        settings.redis_url,
        prefix=settings.redis_prefix,
        socket_timeout_s=settings.redis_socket_timeout_s,
        cooldown_s=settings.redis_breaker_cooldown_s,
    )
    return Services(
        settings=settings,
        db=db,
        executor=executor,
        redis=redis,
        cache=TieredCache.from_settings(settings, redis=redis, db=db, executor=executor),
        tracker=tracker or Tracker(),
        passwords=Passwords(
            settings,
            executor,
            None
            if settings.is_degraded
            else HashBudget(
                settings.hash_workers,
                max(1, settings.hash_queue_max // settings.workers),
                settings.hash_slots_dir,
                settings.hash_nice,
                wait_max_s=settings.hash_wait_max_s,
                share=settings.hash_workers / settings.workers,
            ),
        ),
        tokens=TokenCodec(settings),
        limiter=LoginLimiter(settings, redis),
        service_keys=ServiceKeys(settings),
    )


async def services(conn: HTTPConnection) -> Services:
    """The app's ``Services``, for handlers (``Depends(services)``).

    ``async`` on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a thread
    hop on every request.
    """
    svc: Services = conn.app.state.services
    return svc

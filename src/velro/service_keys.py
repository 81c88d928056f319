"""Service keys: created by the CLI, printed once, stored as their SHA-256, checked per request.

The check of a valid key is cached per process for ``service_key_ttl_s`` (5 minutes by
default), keyed by the key's SHA-256, so a warm ``GET /internal/users/{id}`` makes no
database call for the key.

Revocation takes effect at once in every process, by this choice:

- ``velro keys revoke`` marks the row revoked, then publishes the key's SHA-256 on the Redis
  channel ``<redis_prefix>service_keys:revoked``. Every app subscribes to that channel in its
  lifespan and drops the entry as the message arrives.
- The cache is trusted only while this process's subscription is confirmed and live. Before
  the first confirmation, whenever the subscription breaks (Redis down, restarted,
  unreachable), and when Redis is not configured at all, every check goes to the database
  (one indexed lookup), so no revocation can be missed while a message could be. The cache
  is emptied on every (re)subscription, so a revocation published during an outage is seen
  on the next check. A check that read the database while a revocation message arrived does
  not cache its (possibly stale) answer.
- The degraded profile has no cache at all (the story's original service).

Left open, and stated in the README: a network partition that silently drops the
subscription's TCP connection without closing it is noticed at the next health-check PING
(every 5 s), and a revocation published by a CLI that cannot reach Redis while the apps can
reaches them only through the TTL (the CLI then says so and exits with status 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis
from cachetools import TTLCache
from redis.exceptions import RedisError
from sqlalchemy import Connection, select, update

from velro.db.schema import service_keys
from velro.settings import Settings

if TYPE_CHECKING:
    from velro.services import Services

__all__ = [
    "KEY_PREFIX",
    "ServiceKeys",
    "create_key",
    "digest",
    "find_active",
    "list_keys",
    "publish_revocation",
    "revocation_channel",
    "revoke_key",
]

log = logging.getLogger("velro.service_keys")

KEY_PREFIX = "vsk_"
# Longer than any key we issue (4 + 43 characters); a longer header is refused unhashed.
_MAX_KEY_LEN = 128
_FLUSH = "*"


def digest(key: str) -> str:
    """The SHA-256 hex of a key: what the database stores and the cache is keyed by."""
    return hashlib.sha256(key.encode()).hexdigest()


def revocation_channel(prefix: str) -> str:
    return f"{prefix}service_keys:revoked"


# -- repository ------------------------------------------------------------------------------


def create_key(conn: Connection, name: str) -> tuple[str, str]:
    """Store a new key; answer ``(id, key)``. The key is not kept anywhere: print it once."""
    # 256 bits of randomness (OWASP: at least 128 for an API secret)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = str(uuid.uuid4())
    conn.execute(
        service_keys.insert().values(
            id=key_id, name=name, key_sha256=digest(key), created_at=datetime.now(UTC)
        )
    )
    return key_id, key


def list_keys(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            service_keys.c.id,
            service_keys.c.name,
            service_keys.c.created_at,
            service_keys.c.revoked_at,
        ).order_by(service_keys.c.created_at)
    )
    return [dict(row._mapping) for row in rows]


def revoke_key(conn: Connection, key_id: str) -> str | None:
    """Mark the key revoked (idempotent); answer its SHA-256, or None when no such key."""
    row = conn.execute(
        select(service_keys.c.key_sha256, service_keys.c.revoked_at).where(
            service_keys.c.id == key_id
        )
    ).first()
    if row is None:
        return None
    if row.revoked_at is None:
        conn.execute(
            update(service_keys)
            .where(service_keys.c.id == key_id)
            .values(revoked_at=datetime.now(UTC))
        )
    sha: str = row.key_sha256
    return sha


def find_active(conn: Connection, sha256: str) -> str | None:
    """The id of the unrevoked key with this SHA-256, or None."""
    key_id: str | None = conn.execute(
        select(service_keys.c.id).where(
            service_keys.c.key_sha256 == sha256, service_keys.c.revoked_at.is_(None)
        )
    ).scalar()
    return key_id


def publish_revocation(settings: Settings, sha256: str) -> int:
    """Tell every subscribed process to drop ``sha256`` (blocking; for the CLI).

    Answers how many processes received it; raises ``RedisError``/``OSError`` when Redis
    cannot be reached.
    """
    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
    )
    try:
        return int(client.publish(revocation_channel(settings.redis_prefix), sha256))
    finally:
        client.close()


# -- the per-process check -------------------------------------------------------------------


class ServiceKeys:
    """The cached check of ``X-Service-Key``, and the listener that keeps it honest."""

    def __init__(self, settings: Settings) -> None:
        self._url = settings.redis_url or None
        self._channel = revocation_channel(settings.redis_prefix)
        self._cache: TTLCache[str, str] | None = (
            None
            if settings.is_degraded
            else TTLCache(maxsize=10_000, ttl=settings.service_key_ttl_s)
        )
        # True only while the revocation subscription is confirmed: the cache may answer
        self.live = False
        # bumped by every revocation message: a check that overlapped one does not cache
        self._generation = 0
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self.hits = 0
        self.misses = 0

    async def start(self) -> None:
        if self._url is not None and self._cache is not None:
            self._task = asyncio.create_task(self._listen(), name="velro-service-key-revocations")

    async def wait_live(self, timeout_s: float) -> bool:
        """Wait until the revocation subscription is confirmed (tests, readiness)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout_s)
        return self.live

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self, svc: Services, key: str | None) -> str | None:
        """The id of the valid key given, or None for a missing, unknown or revoked one."""
        if not key or len(key) > _MAX_KEY_LEN:
            return None
        sha = digest(key)
        cache = self._cache
        if cache is not None and self.live:
            key_id = cache.get(sha)
            if key_id is not None:
                self.hits += 1
                return key_id
        self.misses += 1
        generation = self._generation
        key_id = await svc.db_call(find_active, sha)
        if (
            key_id is not None
            and cache is not None
            and self.live
            and generation == self._generation
        ):
            cache[sha] = key_id
        return key_id

    def forget(self, sha256: str) -> None:
        """Drop one cached key (``*``: all of them)."""
        self._generation += 1
        if self._cache is None:
            return
        if sha256 == _FLUSH:
            self._cache.clear()
        else:
            self._cache.pop(sha256, None)

    async def revoke(self, svc: Services, key_id: str) -> bool:
        """Revoke from inside the app: the database, this process, then every other one."""
        sha = await svc.db_call(revoke_key, key_id)
        if sha is None:
            return False
        self.forget(sha)
        await svc.redis.call(lambda c: c.publish(self._channel, sha))
        return True

    def stats(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "cached": 0 if self._cache is None else len(self._cache),
            "live": self.live,
        }

    async def _listen(self) -> None:
        assert self._url is not None  # start() only runs the listener with Redis configured
        delay = 0.1
        while True:
            client = aioredis.Redis.from_url(
                self._url, socket_connect_timeout=1.0, health_check_interval=5
            )
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while True:  # the confirmation: from here on no publish can pass unseen
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "subscribe":
                        break
                self.forget(_FLUSH)
                self.live = True
                self._subscribed.set()
                delay = 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message["type"] == "message":
                        data = message["data"]
                        self.forget(data.decode() if isinstance(data, bytes) else str(data))
            except (RedisError, OSError) as exc:
                if self.live:
                    log.warning(
                        "service-key revocation channel lost (%s); checking keys in the "
                        "database until it is back",
                        exc,
                    )
            finally:
                self.live = False
                self.forget(_FLUSH)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

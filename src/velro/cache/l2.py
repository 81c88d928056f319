"""L2: Redis, shared by the processes of one deployment, and the invalidation channel.

Every call goes through ``RedisConnection.call``, so the short socket timeout and the circuit
breaker apply: when Redis is down or slow a lookup is a miss after at most one socket timeout,
and while the breaker is open it costs nothing: no failed requests and no stall beyond the
timeout (tests/test_cache_outage.py).

An entry is stored as the JSON text ``[deadline, value]``: ``deadline`` (epoch seconds) is when
the entry expires in L2, so a process that fills its L1 from L2 never keeps the value longer.
An invalidated key holds a tombstone for a few seconds, and write-backs only write absent keys,
so a computation that read the old value before the invalidation cannot store it after.

Invalidations are broadcast on the channel ``<prefix>invalidate``. The listener holds its own
connection without a read timeout (a subscriber waits for messages by design); when it loses
Redis it reconnects with a back-off and, once subscribed again, tells the cache, which clears
its L1 because messages may have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from velro.redis_conn import RedisConnection

__all__ = ["TOMBSTONE", "InvalidationListener", "L2Cache"]

T = TypeVar("T")

log = logging.getLogger("velro.cache")

_FAILURES = (RedisError, OSError, TimeoutError)

# What an invalidated key holds for a few seconds: no JSON text starts with "-".
TOMBSTONE = b"-"


class L2Cache:
    def __init__(self, conn: RedisConnection, *, ttl_s: float) -> None:
        if not conn.enabled:
            raise ValueError("L2 needs an enabled RedisConnection; pass redis=None for no L2")
        self.conn = conn
        self.ttl_s = ttl_s
        self.channel = conn.prefix + "invalidate"
        self.errors = 0  # calls that failed or timed out (each opens the breaker)
        self.breaker_open = 0  # calls skipped because the breaker was open

    def key(self, skey: str) -> str:
        return self.conn.key("cache", skey)

    async def _call(self, fn: Callable[[aioredis.Redis], Awaitable[T]]) -> T | None:
        if self.conn.is_open():
            self.breaker_open += 1
            return None

        async def counted(client: aioredis.Redis) -> T:
            try:
                return await fn(client)
            except _FAILURES:
                self.errors += 1
                raise

        return await self.conn.call(counted)

    async def get(self, skey: str) -> tuple[float, Any] | None:
        """``(deadline, value)``, or ``None`` on a miss or when Redis does not answer."""
        raw = await self._call(lambda c: c.get(self.key(skey)))
        if raw is None or raw == TOMBSTONE:
            return None
        try:
            deadline, value = json.loads(raw)
            return float(deadline), value
        except (ValueError, TypeError):
            # not written by this cache (or by an incompatible version): a miss, not a failure
            log.warning("ignored a malformed L2 entry for %r", skey)
            return None

    async def set(self, skey: str, encoded: str, deadline: float, now: float) -> None:
        """Store the JSON text ``encoded`` until ``deadline`` or for the L2 TTL if sooner.

        Only where the key is absent (``NX``): a write-back never replaces an invalidation's
        tombstone, so a value read before the invalidation cannot come back after it.
        """
        ttl = min(self.ttl_s, deadline - now)
        if ttl <= 0.001:
            return
        payload = f"[{now + ttl!r},{encoded}]"
        await self._call(lambda c: c.set(self.key(skey), payload, px=int(ttl * 1000), nx=True))

    async def tombstone(self, skey: str, ttl_s: float) -> bool:
        """Replace the entry with a tombstone for ``ttl_s``; False when Redis did not answer."""
        ok = await self._call(lambda c: c.set(self.key(skey), TOMBSTONE, px=int(ttl_s * 1000)))
        return bool(ok)

    async def publish(self, message: str) -> None:
        await self._call(lambda c: c.publish(self.channel, message))


# The listener PINGs Redis this often; it counts as live while an answer came within
# LIVENESS_S. That is how late a process notices that other processes' invalidations may no
# longer reach it (then it trusts its L1 entries only l1_ttl_s).
PING_EVERY_S = 0.5
LIVENESS_S = 2.0


class InvalidationListener:
    """Subscribes to the invalidation channel and hands each message to ``on_message``."""

    def __init__(
        self,
        conn: RedisConnection,
        channel: str,
        *,
        on_message: Callable[[str], None],
        on_subscribed: Callable[[], None],
        retry_s: float,
        connect_timeout_s: float,
    ) -> None:
        assert conn.url is not None
        self._url = conn.url
        self.channel = channel
        self._on_message = on_message
        self._on_subscribed = on_subscribed
        self._retry_s = retry_s
        self._connect_timeout_s = connect_timeout_s
        self.subscribed = asyncio.Event()
        self._attempted = asyncio.Event()  # the first attempt to subscribe ended, either way
        self.origin = uuid.uuid4().hex  # this cache instance, to skip its own broadcasts
        self.received = 0
        self._last_seen = 0.0  # monotonic time of the last message or PONG
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def live(self) -> bool:
        """Subscribed, and Redis answered a PING within the last ``LIVENESS_S``.

        A Redis that hangs (or a connection that died without a word) stops answering PINGs;
        ``subscribed`` alone would not notice.
        """
        return self.subscribed.is_set() and time.monotonic() - self._last_seen < LIVENESS_S

    @property
    def started(self) -> bool:
        """True once started, and after ``close`` (a closed listener is not started again)."""
        return self._task is not None or self._closed

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def wait_subscribed(self, timeout_s: float) -> bool:
        """Wait for the first attempt to subscribe (at most ``timeout_s``); True if it did."""
        try:
            await asyncio.wait_for(self._attempted.wait(), timeout_s)
        except TimeoutError:
            return False
        return self.subscribed.is_set()

    async def close(self) -> None:
        self._closed = True
        self.subscribed.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _run(self) -> None:
        while True:
            client = aioredis.Redis.from_url(
                self._url, socket_connect_timeout=self._connect_timeout_s, socket_timeout=None
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._last_seen = last_ping = time.monotonic()
                self.subscribed.set()
                self._attempted.set()
                self._on_subscribed()
                while True:
                    now = time.monotonic()
                    if now - last_ping >= PING_EVERY_S:
                        last_ping = now
                        await pubsub.ping()
                    if now - self._last_seen > 2 * LIVENESS_S:
                        raise ConnectionError(f"no PONG for {now - self._last_seen:.1f} s")
                    message = await pubsub.get_message(timeout=PING_EVERY_S / 2)
                    if message is None:
                        continue
                    self._last_seen = time.monotonic()
                    if message.get("type") == "message":
                        self.received += 1
                        data = message["data"]
                        self._on_message(data.decode() if isinstance(data, bytes) else data)
            except Exception as exc:  # any failure: a lost connection, or a bug in a handler
                if self.subscribed.is_set():
                    log.warning(
                        "cache invalidation channel lost (%r); other processes' invalidations "
                        "reach this one within the L1 TTL until it is back",
                        exc,
                    )
                self.subscribed.clear()
                self._attempted.set()
            finally:
                await _quietly(pubsub.aclose())
                await _quietly(client.aclose())
            await asyncio.sleep(self._retry_s)


async def _quietly(aw: Awaitable[Any]) -> None:
    with contextlib.suppress(*_FAILURES):
        await aw

"""The tiered cache: L1 (process memory) -> L2 (Redis) -> L3 (database) -> the loader.

``value, tier = await cache.get_or_load(namespace, key, loader, ttl_s=...)`` answers from the
fastest tier that holds the key and fills the faster tiers on the way back: an L2 hit fills L1,
an L3 hit fills L1 and L2, a loaded value is written to all three. ``tier`` is ``"L1"``,
``"L2"``, ``"L3"`` or ``"miss"`` and is noted for ``Server-Timing`` (``cache;desc="L1"``).

Values must be JSON-serialisable and are handed out as JSON decodes them (a tuple comes back as
a list, from every tier alike, the first time too). They are shared between callers: treat
them as read-only.

Misses are single-flight per key. ``ttl_s`` (a number of seconds, or a function of the value
answering one) caps the entry's life in every tier; each tier also keeps it no longer than its
own TTL, and 0 means "do not cache this value". L3 is read and written only while L2 cannot
serve (no Redis, or its breaker open): see ``_fill``. L1 keeps an entry up to ``l1_live_ttl_s``
while the invalidation channel is live (other processes' invalidations reach this one within
a millisecond), and trusts it no longer than ``l1_ttl_s`` when the channel is down or there is
no Redis: that is the bound on staleness across processes. (With L1 held to 5 s, a 10,000-user
ramp whose users think 5-15 s between requests missed L1 on most lookups.)

Invalidation drops the key from this process's L1 at once, replaces it in L2 and L3 with a
tombstone for ``tombstone_s`` (a computation elsewhere that read the old value before cannot
write it back) and broadcasts it on ``<prefix>invalidate``; the other processes drop it from
their L1 as the message arrives (a millisecond on loopback). An invalidation Redis did not
take (an outage) is sent again once Redis answers. Without Redis, or while the channel is
down, they drop it within ``l1_ttl_s`` (5 s by default), when their L1 entry expires.

The ``degraded`` profile (``enabled=False``) turns every tier off: the loader runs every time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from velro import timing
from velro.cache.l1 import L1Cache
from velro.cache.l2 import InvalidationListener, L2Cache
from velro.cache.l3 import L3Cache
from velro.cache.singleflight import Flight, SingleFlight

if TYPE_CHECKING:
    from velro.db import Database
    from velro.executor import Executor
    from velro.redis_conn import RedisConnection
    from velro.settings import Settings

__all__ = ["TieredCache", "Ttl"]

log = logging.getLogger("velro.cache")

Ttl: TypeAlias = float | Callable[[Any], float] | None
_Result: TypeAlias = tuple[Any, str]

# cache_entries.key is 255 characters; longer keys are stored by their SHA-256.
_MAX_KEY = 200
_CLOSE_WAIT_S = 5.0
_MAX_UNSENT = 10_000


class TieredCache:
    def __init__(
        self,
        *,
        enabled: bool = True,
        l1_ttl_s: float = 5.0,
        l1_live_ttl_s: float = 300.0,
        l1_max_entries: int = 100_000,
        l2_ttl_s: float = 300.0,
        l3_ttl_s: float = 300.0,
        redis: RedisConnection | None = None,
        db: Database | None = None,
        executor: Executor | None = None,
        listener_retry_s: float = 1.0,
        listener_connect_timeout_s: float = 0.5,
        tombstone_s: float = 10.0,
    ) -> None:
        self.enabled = enabled
        # Longer than a computation can take between reading a value and writing it back
        # (the executor's database timeout, 5 s by default, plus two Redis timeouts).
        self.tombstone_s = tombstone_s
        self._unsent: set[str] = set()  # invalidations Redis did not take yet
        self._resending: asyncio.Task[None] | None = None
        use_redis = enabled and redis is not None and redis.enabled
        self.l1_ttl_s = l1_ttl_s
        self.l1 = L1Cache(
            ttl_s=max(l1_ttl_s, l1_live_ttl_s) if use_redis else l1_ttl_s,
            max_entries=l1_max_entries,
        )
        self.l2 = L2Cache(redis, ttl_s=l2_ttl_s) if use_redis and redis is not None else None
        if (db is None) != (executor is None):
            raise ValueError("L3 needs both db and executor; pass both or neither")
        self.l3 = (
            L3Cache(db, executor, ttl_s=l3_ttl_s)
            if enabled and db is not None and executor is not None
            else None
        )
        self.listener: InvalidationListener | None = None
        if self.l2 is not None and redis is not None:
            self.listener = InvalidationListener(
                redis,
                self.l2.channel,
                on_message=self._on_remote_invalidation,
                on_subscribed=self._on_subscribed,
                retry_s=listener_retry_s,
                connect_timeout_s=listener_connect_timeout_s,
            )
        self._flights: SingleFlight[_Result] = SingleFlight()
        self._l1_hits = self._l1_misses = 0
        self._l2_hits = self._l2_misses = 0
        self._l3_hits = self._l3_misses = 0
        self._loader_calls = 0
        self._invalidations = 0
        self._remote_invalidations = 0
        self._l3_warned_at = 0.0

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        redis: RedisConnection | None,
        db: Database | None,
        executor: Executor | None,
    ) -> TieredCache:
        return cls(
            enabled=not settings.is_degraded,
            l1_ttl_s=settings.l1_ttl_s,
            l1_live_ttl_s=settings.l1_live_ttl_s,
            l1_max_entries=settings.l1_max_entries,
            l2_ttl_s=settings.l2_ttl_s,
            l3_ttl_s=settings.l3_ttl_s,
            redis=redis,
            db=db,
            executor=executor,
            listener_retry_s=settings.redis_breaker_cooldown_s,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to invalidations; waits a moment for it, never fails when Redis is down."""
        if self.listener is not None and not self.listener.started:
            self.listener.start()
            await self.listener.wait_subscribed(1.0)

    async def flush(self) -> None:
        """Wait until every computation and write-back in progress has finished."""
        while pending := self._flights.pending():
            await asyncio.wait(pending)

    async def close(self) -> None:
        pending = self._flights.pending()
        if pending:
            await asyncio.wait(pending, timeout=_CLOSE_WAIT_S)
        if self._resending is not None:
            await asyncio.wait([self._resending], timeout=_CLOSE_WAIT_S)
        if self.listener is not None:
            await self.listener.close()

    # -- the API ---------------------------------------------------------------------------

    async def get_or_load(
        self,
        namespace: str,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        *,
        ttl_s: Ttl = None,
        versioned: bool = False,
    ) -> _Result:
        """``versioned``: the key names its value for good (it embeds the versions the value
        was computed from, as authz decisions do), so no change can make the entry stale and
        it may live ``ttl_s`` in every tier, past the tiers' own TTLs, which bound only how
        long an entry whose invalidation was missed stays wrong."""
        if not self.enabled:
            # degraded: no tier at all, as in the story's original service
            self._l1_misses += 1
            self._loader_calls += 1
            value = json.loads(_encode(namespace, await loader()))
            timing.note_cache("miss")
            return value, "miss"
        skey = storage_key(namespace, key)
        listener = self.listener
        value = self.l1.get(
            skey, None if listener is not None and listener.live() else self.l1_ttl_s
        )
        if value is not L1Cache.MISSING:
            self._l1_hits += 1
            timing.note_cache("L1")
            return value, "L1"
        self._l1_misses += 1
        if self.listener is not None and not self.listener.started:
            self.listener.start()  # a cache used without start(): subscribe now

        async def fill(flight: Flight[_Result]) -> None:
            await self._fill(flight, namespace, skey, loader, ttl_s, versioned)

        value, tier = await self._flights.run(skey, fill)
        timing.note_cache(tier)
        return value, tier

    async def invalidate(self, namespace: str, key: str) -> None:
        """Drop the key everywhere: this L1 at once, L2, L3, and other processes' L1."""
        self._invalidations += 1
        if not self.enabled:
            return
        skey = storage_key(namespace, key)
        self.l1.pop(skey)
        flight = self._flights.forget(skey)
        if flight is not None and flight.task is not None:
            # let a write-back already under way finish, so the tombstones below come after it
            await asyncio.wait([flight.task])
        # Tombstones rather than deletes: a computation elsewhere that read the old value
        # before this point cannot write it back for tombstone_s (l2.py, l3.py).
        writes: list[Awaitable[Any]] = []
        if self.l2 is not None:
            writes.append(self._l2_tombstone(skey))
        if self.l3 is not None:
            writes.append(self.l3.tombstone(skey, self.tombstone_s))
        await asyncio.gather(*writes)
        if self.l2 is not None and self.listener is not None:
            # after the tombstones: a process that drops its L1 must not refill it from L2/L3
            await self.l2.publish(json.dumps([self.listener.origin, skey]))

    async def _l2_tombstone(self, skey: str) -> None:
        assert self.l2 is not None
        if await self.l2.tombstone(skey, self.tombstone_s):
            self._unsent.discard(skey)
        else:
            # Redis did not answer: its entry may outlive the outage (a blip, not a restart),
            # so try again once Redis answers (_resend). Bounded: past the cap, an entry left
            # in L2 lives out its L2 TTL.
            if len(self._unsent) < _MAX_UNSENT:
                self._unsent.add(skey)

    async def _resend(self) -> None:
        assert self.l2 is not None
        assert self.listener is not None
        for skey in list(self._unsent):
            await self._l2_tombstone(skey)
            if skey not in self._unsent:
                await self.l2.publish(json.dumps([self.listener.origin, skey]))

    def stats(self) -> dict[str, Any]:
        l1_lookups = self._l1_hits + self._l1_misses
        hits = self._l1_hits + self._l2_hits + self._l3_hits
        l2: dict[str, Any] = {
            "enabled": self.l2 is not None,
            **_tier(self._l2_hits, self._l2_misses),
        }
        if self.l2 is not None:
            l2 |= {"errors": self.l2.errors, "breaker_open": self.l2.breaker_open}
        l3: dict[str, Any] = {
            "enabled": self.l3 is not None,
            **_tier(self._l3_hits, self._l3_misses),
        }
        if self.l3 is not None:
            l3["errors"] = self.l3.errors
        if self.listener is None:
            channel = "disabled"
        else:
            channel = "subscribed" if self.listener.subscribed.is_set() else "down"
        return {
            "enabled": self.enabled,
            "L1": {
                "enabled": self.enabled,
                **_tier(self._l1_hits, self._l1_misses),
                "size": len(self.l1),
                "max_entries": self.l1.max_entries,
                "ttl_s": self.l1_ttl_s,
                "live_ttl_s": self.l1.ttl_s,
            },
            "L2": l2,
            "L3": l3,
            "overall": {
                "lookups": l1_lookups,
                "hits": hits,
                "hit_rate": hits / l1_lookups if l1_lookups else None,
            },
            "loader_calls": self._loader_calls,
            "coalesced": self._flights.coalesced,
            "invalidations": self._invalidations,
            "invalidations_received": self._remote_invalidations,
            "invalidations_unsent": len(self._unsent),
            "invalidation_channel": channel,
        }

    # -- the miss path ---------------------------------------------------------------------

    async def _fill(
        self,
        flight: Flight[_Result],
        namespace: str,
        skey: str,
        loader: Callable[[], Awaitable[Any]],
        ttl_s: Ttl,
        versioned: bool = False,
    ) -> None:
        """The miss path: L2, then L3 only while L2 cannot serve, then the loader.

        While Redis answers, L2 is the tier every process shares and L3 is neither read nor
        written: an L3 lookup costs a query as dear as the loaders' own (one indexed
        SELECT), and its write-back made every miss a database write on the read path (a
        fifth of a worker's time in a 10,000-user ramp, where every new user misses). L3 is
        the shared tier of a service without Redis, or while Redis is down.
        """
        if await self._from_l2(flight, skey, versioned):
            return
        l3 = self.l3 if self._l2_down() else None
        if l3 is not None and await self._from_l3(flight, skey):
            return
        self._loader_calls += 1
        encoded = _encode(namespace, await loader())
        value = json.loads(encoded)
        ttl = ttl_s(value) if callable(ttl_s) else ttl_s
        now = time.time()
        deadline = math.inf if ttl is None else now + ttl
        if deadline <= now:  # the value asked not to be cached
            flight.resolve((value, "miss"))
            return
        if not flight.stale:
            self.l1.set(skey, value, deadline, capped=not versioned)
        flight.resolve((value, "miss"))
        if flight.stale:
            return
        await self._write_back(skey, encoded, deadline, now, l3=l3 is not None, versioned=versioned)

    def _l2_down(self) -> bool:
        return self.l2 is None or self.l2.conn.is_open()

    async def _from_l2(self, flight: Flight[_Result], skey: str, versioned: bool = False) -> bool:
        if self.l2 is None:
            return False
        if self._unsent and not self.l2.conn.is_open():
            self._resend_soon()
        got = await self.l2.get(skey)
        if got is None:
            self._l2_misses += 1
            return False
        self._l2_hits += 1
        deadline, value = got
        if not flight.stale:
            self.l1.set(skey, value, deadline, capped=not versioned)
        flight.resolve((value, "L2"))
        return True

    async def _from_l3(self, flight: Flight[_Result], skey: str) -> bool:
        got = await self._l3_get(skey)
        if got is None:
            self._l3_misses += 1
            return False
        self._l3_hits += 1
        deadline, encoded = got
        value = json.loads(encoded)
        if not flight.stale:
            self.l1.set(skey, value, deadline)
        flight.resolve((value, "L3"))
        if self.l2 is not None and not flight.stale:
            await self.l2.set(skey, encoded, deadline, time.time())
        return True

    async def _write_back(
        self, skey: str, encoded: str, deadline: float, now: float, *, l3: bool, versioned: bool
    ) -> None:
        writes = []
        if self.l2 is not None:
            writes.append(self.l2.set(skey, encoded, deadline, now, capped=not versioned))
        if l3:
            writes.append(self._l3_set(skey, encoded, deadline, now))
        await asyncio.gather(*writes)

    def _resend_soon(self) -> None:
        if self._resending is None or self._resending.done():
            self._resending = asyncio.get_running_loop().create_task(self._resend())

    async def _l3_get(self, skey: str) -> tuple[float, str] | None:
        assert self.l3 is not None
        try:
            return await self.l3.get(skey)
        except Exception as exc:
            # The loader is the source of truth and fails on its own if the database is down;
            # a failed L3 read only costs this lookup its L3 chance.
            self._l3_failed("read", exc)
            return None

    async def _l3_set(self, skey: str, encoded: str, deadline: float, now: float) -> None:
        assert self.l3 is not None
        try:
            await self.l3.set(skey, encoded, deadline, now)
        except Exception as exc:
            self._l3_failed("write", exc)

    def _l3_failed(self, what: str, exc: Exception) -> None:
        assert self.l3 is not None
        self.l3.errors += 1
        now = time.monotonic()
        if now - self._l3_warned_at >= 10.0:  # one line per 10 s, not one per request
            self._l3_warned_at = now
            log.warning("L3 cache %s failed (%r); %d failures so far", what, exc, self.l3.errors)

    # -- other processes -------------------------------------------------------------------

    def _on_remote_invalidation(self, message: str) -> None:
        try:
            origin, skey = json.loads(message)
        except (ValueError, TypeError):
            log.warning("ignored a malformed invalidation message: %.200r", message)
            return
        if self.listener is not None and origin == self.listener.origin:
            return
        self._remote_invalidations += 1
        self.l1.pop(skey)
        self._flights.forget(skey)

    def _on_subscribed(self) -> None:
        # Invalidations sent while this process was not subscribed are lost: start L1 afresh.
        self.l1.clear()


def storage_key(namespace: str, key: str) -> str:
    """The key in every tier: ``namespace:key``, hashed when too long for the L3 column."""
    skey = f"{namespace}:{key}"
    if len(skey) > _MAX_KEY:
        skey = f"{namespace[:64]}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return skey


def _encode(namespace: str, value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"the value loaded for cache namespace {namespace!r} cannot be cached: {exc}; "
            "return JSON-serialisable data (str, int, float, bool, None, list, dict with str "
            "keys), e.g. an ISO 8601 string instead of a datetime"
        ) from exc


def _tier(hits: int, misses: int) -> dict[str, Any]:
    lookups = hits + misses
    return {"hits": hits, "misses": misses, "hit_rate": hits / lookups if lookups else None}

"""The tiered cache: each tier answers in turn, misses are single-flight, entries expire,
invalidation reaches other instances, L3 works on SQLite and PostgreSQL, and the degraded
profile turns every tier off. Real Redis, real databases, no mocks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.helpers import delete_redis_prefix, free_port
from velro import timing
from velro.cache import L1Cache, L3Cache, TieredCache, storage_key
from velro.db import Database
from velro.db.schema import cache_entries
from velro.executor import Executor
from velro.redis_conn import RedisConnection
from velro.settings import Settings

# Generous on purpose: these tests are about behaviour, not about the outage timeout
# (test_cache_outage.py), and the machine is shared.
REDIS_TIMEOUT_S = 1.0


def sqlite_db(tmp_path: Path, name: str = "cache.db") -> Database:
    db = Database(f"sqlite:///{tmp_path / name}")
    db.create_all()
    return db


@asynccontextmanager
async def open_cache(
    *, db: Database | None = None, redis_url: str | None = None, prefix: str = "", **kw: Any
) -> AsyncIterator[TieredCache]:
    redis = (
        RedisConnection(redis_url, prefix=prefix, socket_timeout_s=REDIS_TIMEOUT_S, cooldown_s=1.0)
        if redis_url
        else None
    )
    executor = Executor(4, {"db": 5.0}) if db is not None else None
    cache = TieredCache(redis=redis, db=db, executor=executor, **kw)
    await cache.start()
    try:
        yield cache
    finally:
        await cache.close()
        if redis is not None:
            await redis.close()
        if executor is not None:
            executor.shutdown()


def counting_loader(values: list[Any]) -> tuple[Callable[[], Any], list[int]]:
    """A loader answering ``values[i]`` on its i-th call, and the list of its calls."""
    calls: list[int] = []

    async def load() -> Any:
        calls.append(len(calls))
        return values[min(len(calls) - 1, len(values) - 1)]

    return load, calls


def l3_rows(db: Database) -> int:
    return int(
        db.call(lambda c: c.execute(select(func.count()).select_from(cache_entries)).scalar())
    )


@pytest.mark.redis
def test_while_redis_answers_l1_then_l2_answer_and_a_read_never_writes_the_database(
    tmp_path: Path, redis_server: str, redis_prefix: str
) -> None:
    db = sqlite_db(tmp_path)

    async def scenario() -> None:
        load, calls = counting_loader([{"id": "u1", "v": 1}, {"id": "u1", "v": 2}])
        async with open_cache(db=db, redis_url=redis_server, prefix=redis_prefix) as cache:
            assert await cache.get_or_load("users", "u1", load) == ({"id": "u1", "v": 1}, "miss")
            await cache.flush()  # the write-back to L2 runs after the caller has its value
            assert await cache.get_or_load("users", "u1", load) == ({"id": "u1", "v": 1}, "L1")

            cache.l1.clear()
            assert await cache.get_or_load("users", "u1", load) == ({"id": "u1", "v": 1}, "L2")
            assert (await cache.get_or_load("users", "u1", load))[1] == "L1"  # L2 filled L1

            # L3 is the shared tier only while L2 cannot serve: an L2 miss goes to the loader,
            # and the miss wrote nothing to the database
            cache.l1.clear()
            assert delete_redis_prefix(redis_server, redis_prefix) >= 1
            assert await cache.get_or_load("users", "u1", load) == ({"id": "u1", "v": 2}, "miss")
            await cache.flush()
            assert l3_rows(db) == 0
            assert len(calls) == 2

            s = cache.stats()
            assert (s["L1"]["hits"], s["L1"]["misses"]) == (2, 3)
            assert (s["L2"]["hits"], s["L2"]["misses"]) == (1, 2)
            assert (s["L3"]["hits"], s["L3"]["misses"]) == (0, 0)
            assert s["overall"] == {"lookups": 5, "hits": 3, "hit_rate": 3 / 5}
            assert s["loader_calls"] == 2
            assert s["L2"]["errors"] == 0
            assert s["invalidation_channel"] == "subscribed"

    try:
        asyncio.run(scenario())
    finally:
        db.close()


def test_the_tier_that_answered_goes_into_server_timing() -> None:
    async def scenario() -> list[str | None]:
        seen = []
        async with open_cache() as cache:
            load, _ = counting_loader(["x"])
            for _ in range(2):
                ctx = timing.RequestContext(request_id="r")
                token = timing._set(ctx)
                await cache.get_or_load("ns", "k", load)
                timing._reset(token)
                seen.append(ctx.server_timing().split(", ")[-1])
        return seen

    assert asyncio.run(scenario()) == ['cache;desc="miss"', 'cache;desc="L1"']


def test_concurrent_misses_for_one_key_run_the_loader_once() -> None:
    async def scenario() -> None:
        started, release = asyncio.Event(), asyncio.Event()
        calls = 0

        async def load() -> dict[str, int]:
            nonlocal calls
            calls += 1
            started.set()
            await release.wait()  # hold the computation until every caller is waiting on it
            return {"n": calls}

        async with open_cache() as cache:
            tasks = [asyncio.ensure_future(cache.get_or_load("ns", "k", load)) for _ in range(50)]
            await started.wait()
            while cache.stats()["coalesced"] < 49:
                await asyncio.sleep(0)
            release.set()
            results = await asyncio.gather(*tasks)
            assert calls == 1
            assert results == [({"n": 1}, "miss")] * 50
            s = cache.stats()
            assert s["loader_calls"] == 1
            assert s["L1"]["misses"] == 50
            assert (await cache.get_or_load("ns", "k", load))[1] == "L1"

    asyncio.run(scenario())


def test_a_loader_error_reaches_every_waiter_and_is_not_cached() -> None:
    async def scenario() -> None:
        release = asyncio.Event()
        calls = 0

        async def load() -> str:
            nonlocal calls
            calls += 1
            if calls == 1:
                await release.wait()
                raise LookupError("the database said no")
            return "ok"

        async with open_cache() as cache:
            tasks = [asyncio.ensure_future(cache.get_or_load("ns", "k", load)) for _ in range(10)]
            while cache.stats()["coalesced"] < 9:
                await asyncio.sleep(0)
            release.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, LookupError) for r in results)
            assert await cache.get_or_load("ns", "k", load) == ("ok", "miss")
            assert calls == 2

    asyncio.run(scenario())


def test_a_cancelled_caller_does_not_cancel_the_load_others_wait_for() -> None:
    async def scenario() -> None:
        release = asyncio.Event()

        async def load() -> str:
            await release.wait()
            return "value"

        async with open_cache() as cache:
            first = asyncio.ensure_future(cache.get_or_load("ns", "k", load))
            second = asyncio.ensure_future(cache.get_or_load("ns", "k", load))
            while cache.stats()["coalesced"] < 1:
                await asyncio.sleep(0)
            first.cancel()
            release.set()
            assert await second == ("value", "miss")
            assert first.cancelled()

    asyncio.run(scenario())


@pytest.mark.redis
def test_entries_expire_in_every_tier_and_denials_sooner_than_allows(
    tmp_path: Path, redis_server: str, redis_prefix: str
) -> None:
    db = sqlite_db(tmp_path)

    def ttl(decision: dict[str, bool]) -> float:
        return 30.0 if decision["allowed"] else 0.3

    async def scenario() -> None:
        async with open_cache(db=db, redis_url=redis_server, prefix=redis_prefix) as cache:
            deny, deny_calls = counting_loader([{"allowed": False}])
            allow, allow_calls = counting_loader([{"allowed": True}])
            await cache.get_or_load("authz", "deny", deny, ttl_s=ttl)
            await cache.get_or_load("authz", "allow", allow, ttl_s=ttl)
            await cache.flush()
            assert (await cache.get_or_load("authz", "deny", deny, ttl_s=ttl))[1] == "L1"
            await asyncio.sleep(0.4)  # a real wait past the denial's TTL
            # expired in L1, L2 and L3 alike: the loader runs again
            assert (await cache.get_or_load("authz", "deny", deny, ttl_s=ttl))[1] == "miss"
            assert (await cache.get_or_load("authz", "allow", allow, ttl_s=ttl))[1] == "L1"
            assert (len(deny_calls), len(allow_calls)) == (2, 1)
            # a TTL of 0 means "do not cache this one"
            once, once_calls = counting_loader(["x"])
            for _ in range(2):
                assert (await cache.get_or_load("ns", "zero", once, ttl_s=0))[1] == "miss"
            assert len(once_calls) == 2

    try:
        asyncio.run(scenario())
    finally:
        db.close()


def test_l1_keeps_no_entry_longer_than_its_ttl_and_evicts_the_least_recently_used() -> None:
    l1 = L1Cache(ttl_s=0.2, max_entries=2)
    l1.set("a", 1)
    l1.set("b", 2)
    assert l1.get("a") == 1  # "b" is now the least recently used
    l1.set("c", 3)
    assert l1.get("b") is L1Cache.MISSING
    assert (l1.get("a"), l1.get("c")) == (1, 3)
    time.sleep(0.25)  # a real wait past the TTL
    assert l1.get("a") is L1Cache.MISSING


def test_values_come_back_as_json_from_every_tier_and_a_bad_value_is_named(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path)

    async def scenario() -> None:
        async with open_cache(db=db) as cache:
            load, _ = counting_loader([(1, 2)])
            assert await cache.get_or_load("ns", "t", load) == ([1, 2], "miss")

            async def bad() -> object:
                return {"at": object()}

            with pytest.raises(TypeError, match="namespace 'users'"):
                await cache.get_or_load("users", "x", bad)
            long_key = "k" * 500
            assert len(storage_key("ns", long_key)) < 255
            assert (await cache.get_or_load("ns", long_key, load))[1] == "miss"
            await cache.flush()
            cache.l1.clear()
            assert await cache.get_or_load("ns", long_key, load) == ([1, 2], "L3")

    try:
        asyncio.run(scenario())
    finally:
        db.close()


@pytest.mark.redis
def test_an_invalidation_reaches_the_other_instance_at_once_over_pubsub(
    tmp_path: Path, redis_server: str, redis_prefix: str
) -> None:
    db = sqlite_db(tmp_path)

    async def scenario() -> None:
        # a long L1 TTL, so that only the broadcast can explain the other instance dropping it
        async with (
            open_cache(db=db, redis_url=redis_server, prefix=redis_prefix, l1_ttl_s=60) as a,
            open_cache(db=db, redis_url=redis_server, prefix=redis_prefix, l1_ttl_s=60) as b,
        ):
            load, _ = counting_loader([{"role": "editor"}, {"role": "viewer"}])
            assert (await a.get_or_load("authz", "p1", load))[1] == "miss"
            await a.flush()
            assert await b.get_or_load("authz", "p1", load) == ({"role": "editor"}, "L2")
            assert (await b.get_or_load("authz", "p1", load))[1] == "L1"

            await a.invalidate("authz", "p1")
            assert a.l1.get(storage_key("authz", "p1")) is L1Cache.MISSING  # at once, here
            deadline = time.monotonic() + 2.0
            while b.l1.get(storage_key("authz", "p1")) is not L1Cache.MISSING:
                assert time.monotonic() < deadline, "the other instance kept the entry"
                await asyncio.sleep(0.005)
            # gone from L2 and L3 as well: the other instance loads the new value
            assert await b.get_or_load("authz", "p1", load) == ({"role": "viewer"}, "miss")
            assert b.stats()["invalidations_received"] == 1
            assert a.stats()["invalidations_received"] == 0  # its own broadcast is skipped

    try:
        asyncio.run(scenario())
    finally:
        db.close()


@pytest.mark.redis
def test_a_value_read_before_an_invalidation_is_not_written_back_after_it(
    tmp_path: Path, redis_server: str, redis_prefix: str
) -> None:
    db = sqlite_db(tmp_path)

    async def scenario() -> None:
        async with (
            open_cache(db=db, redis_url=redis_server, prefix=redis_prefix) as a,
            open_cache(db=db, redis_url=redis_server, prefix=redis_prefix) as b,
        ):
            assert b.listener is not None
            await b.listener.close()  # b misses the broadcast, like a process whose channel is down
            reading, release = asyncio.Event(), asyncio.Event()

            async def read_before_the_change() -> str:
                reading.set()
                await release.wait()  # the old row is read; the invalidation happens now
                return "old"

            pending = asyncio.ensure_future(b.get_or_load("user", "u", read_before_the_change))
            await reading.wait()
            await a.invalidate("user", "u")
            release.set()
            assert await pending == ("old", "miss")
            await b.flush()  # its write-back to L2 and L3 found the tombstones
            fresh, _ = counting_loader(["new"])
            assert await a.get_or_load("user", "u", fresh) == ("new", "miss")

    try:
        asyncio.run(scenario())
    finally:
        db.close()


def test_while_redis_is_down_l3_is_the_tier_every_process_shares(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path)
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there: Redis refuses at once

    async def scenario() -> None:
        async with (
            open_cache(db=db, redis_url=down, prefix="down:") as a,
            open_cache(db=db, redis_url=down, prefix="down:") as b,
        ):
            load, calls = counting_loader(["v"])
            assert await a.get_or_load("ns", "k", load) == ("v", "miss")
            await a.flush()
            assert l3_rows(db) == 1  # the breaker is open: the miss was written to L3
            assert await b.get_or_load("ns", "k", load) == ("v", "L3")
            assert len(calls) == 1
            assert a.stats()["L2"]["errors"] + a.stats()["L2"]["breaker_open"] >= 1

    try:
        asyncio.run(scenario())
    finally:
        db.close()


def test_without_redis_another_instance_drops_an_invalidated_key_within_the_l1_ttl(
    tmp_path: Path,
) -> None:
    db = sqlite_db(tmp_path)
    l1_ttl = 0.5

    async def scenario() -> None:
        async with open_cache(db=db, l1_ttl_s=l1_ttl) as a, open_cache(db=db, l1_ttl_s=l1_ttl) as b:
            load, _ = counting_loader(["old", "new"])
            await a.get_or_load("ns", "k", load)
            await a.flush()
            assert await b.get_or_load("ns", "k", load) == ("old", "L3")
            invalidated_at = time.monotonic()
            await a.invalidate("ns", "k")
            await asyncio.sleep(max(0.0, invalidated_at + l1_ttl + 0.05 - time.monotonic()))
            assert await b.get_or_load("ns", "k", load) == ("new", "miss")

    try:
        asyncio.run(scenario())
    finally:
        db.close()


@pytest.mark.redis
def test_l1_trusts_an_entry_past_its_ttl_only_while_invalidations_reach_it(
    redis_server: str, redis_prefix: str, tmp_path: Path
) -> None:
    """Live channel: L1 keeps the entry (an invalidation would reach it). No channel: it
    trusts the entry no longer than the L1 TTL, and the lookup goes on to L3."""
    db = sqlite_db(tmp_path)
    l1_ttl = 0.2

    async def scenario() -> None:
        async with (
            open_cache(db=db, redis_url=redis_server, prefix=redis_prefix, l1_ttl_s=l1_ttl) as live,
            open_cache(db=db, l1_ttl_s=l1_ttl) as alone,
        ):
            assert live.listener is not None
            assert live.listener.live()
            load, calls = counting_loader(["v"])
            for cache in (live, alone):  # each loads once: live shares it in L2, alone in L3
                await cache.get_or_load("ns", "k", load)
                await cache.flush()
            await asyncio.sleep(l1_ttl + 0.1)  # a real wait past the L1 TTL
            assert await live.get_or_load("ns", "k", load) == ("v", "L1")
            assert await alone.get_or_load("ns", "k", load) == ("v", "L3")
            assert len(calls) == 2

    try:
        asyncio.run(scenario())
    finally:
        db.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        db = sqlite_db(tmp_path)
    else:
        db = Database(request.getfixturevalue("postgres_url"))
        db.create_all()
    yield db
    db.close()


def test_l3_stores_reads_overwrites_expires_and_deletes(database: Database) -> None:
    async def scenario() -> None:
        executor = Executor(2, {"db": 5.0})
        l3 = L3Cache(database, executor, ttl_s=300)
        now = time.time()
        try:
            assert await l3.get("ns:k") is None
            await l3.set("ns:k", '{"v":1}', deadline=now + 60, now=now)
            await l3.set("ns:k", '{"v":2}', deadline=now + 60, now=now)  # the upsert
            got = await l3.get("ns:k")
            assert got is not None
            assert got[1] == '{"v":2}'
            assert got[0] == pytest.approx(now + 60)
            await l3.set("ns:short", "1", deadline=now + 0.2, now=now)
            assert await l3.get("ns:short") is not None
            await asyncio.sleep(max(0.0, now + 0.25 - time.time()))
            assert await l3.get("ns:short") is None  # expired rows are never answered
            await l3.tombstone("ns:k", ttl_s=0.3)
            assert await l3.get("ns:k") is None
            await l3.set("ns:k", '{"v":3}', deadline=now + 60, now=time.time())
            assert await l3.get("ns:k") is None  # a write-back does not replace a tombstone
            await asyncio.sleep(0.35)  # a real wait past the tombstone
            await l3.set("ns:k", '{"v":4}', deadline=now + 60, now=time.time())
            got = await l3.get("ns:k")
            assert got is not None
            assert got[1] == '{"v":4}'
        finally:
            executor.shutdown()

    asyncio.run(scenario())


def test_l3_answers_for_a_process_without_redis(database: Database) -> None:
    async def scenario() -> None:
        async with open_cache(db=database) as a, open_cache(db=database) as b:
            load, calls = counting_loader([{"ok": True}])
            await a.get_or_load("svc", "key", load)
            await a.flush()
            assert await b.get_or_load("svc", "key", load) == ({"ok": True}, "L3")
            assert len(calls) == 1

    asyncio.run(scenario())


@pytest.mark.redis
def test_the_degraded_profile_turns_every_tier_off(
    tmp_path: Path, redis_server: str, redis_prefix: str
) -> None:
    db = sqlite_db(tmp_path)
    settings = Settings(
        profile="degraded",
        redis_url=redis_server,
        redis_prefix=redis_prefix,
        database_url=db.url,
        jwt_secret="x" * 32,
    )

    async def scenario() -> None:
        redis = RedisConnection(redis_server, prefix=redis_prefix, socket_timeout_s=1.0)
        executor = Executor(2, {"db": 5.0})
        cache = TieredCache.from_settings(settings, redis=redis, db=db, executor=executor)
        await cache.start()
        try:
            load, calls = counting_loader(["v"])
            for _ in range(3):
                assert await cache.get_or_load("ns", "k", load) == ("v", "miss")
            await cache.flush()
            await cache.invalidate("ns", "k")
            assert len(calls) == 3
            s = cache.stats()
            assert s["enabled"] is False
            assert (s["L2"]["enabled"], s["L3"]["enabled"]) == (False, False)
            assert s["overall"] == {"lookups": 3, "hits": 0, "hit_rate": 0.0}
        finally:
            await cache.close()
            await redis.close()
            executor.shutdown()

    try:
        asyncio.run(scenario())
        assert l3_rows(db) == 0
        assert delete_redis_prefix(redis_server, redis_prefix) == 0
    finally:
        db.close()


@pytest.mark.redis
def test_a_versioned_entry_outlives_the_tiers_ttls_and_others_do_not(
    tmp_path: Path, redis_server: str, redis_prefix: str
) -> None:
    """A key that names its value for good (an authz decision keyed by its ACL versions) lives
    its own TTL in L1 and L2; the tiers' TTLs bound only entries a change could make stale."""

    async def scenario() -> None:
        plain, plain_calls = counting_loader([{"v": 1}, {"v": 2}])
        fixed, fixed_calls = counting_loader([{"v": 1}, {"v": 2}])
        async with open_cache(
            redis_url=redis_server,
            prefix=redis_prefix,
            l1_ttl_s=0.5,
            l1_live_ttl_s=1.0,
            l2_ttl_s=1.0,
        ) as cache:
            await cache.get_or_load("users", "u1", plain, ttl_s=60)
            await cache.get_or_load("authz", "u1:p1:3:7", fixed, ttl_s=60, versioned=True)
            await cache.flush()
            await asyncio.sleep(1.3)  # past both tiers' TTLs (waiting for expiry, not a cost)
            assert await cache.get_or_load("users", "u1", plain, ttl_s=60) == ({"v": 2}, "miss")
            got = await cache.get_or_load("authz", "u1:p1:3:7", fixed, ttl_s=60, versioned=True)
            assert got == ({"v": 1}, "L1")
            cache.l1.clear()
            got = await cache.get_or_load("authz", "u1:p1:3:7", fixed, ttl_s=60, versioned=True)
            assert got == ({"v": 1}, "L2")
        assert len(plain_calls) == 2
        assert len(fixed_calls) == 1

    asyncio.run(scenario())

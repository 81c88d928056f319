"""A Redis outage in the middle of a burst loses no call and stalls none beyond the socket
timeout: the cache answers from the next tier or the loader, and the breaker keeps later
calls from waiting at all.

The test runs a Redis server of its own (``redis-server --port <free> --save ''``) and stops
and then kills that one, never the shared server.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import redis as sync_redis

from velro.cache import TieredCache
from velro.redis_conn import RedisConnection

SOCKET_TIMEOUT_S = 0.05
COOLDOWN_S = 0.3
# A call may wait for one socket timeout (a hung Redis), plus scheduling on a shared 2-core
# machine. Without the timeout a call to a stopped Redis waits for ever; without the breaker
# every call of the outage would pay the timeout. The bound separates those from a working
# breaker with a wide margin and is no performance claim.
STALL_BOUND_S = 1.0


async def _started_cache(url: str, prefix: str) -> tuple[RedisConnection, TieredCache]:
    """A started cache on the test's own Redis, with the short timeout and cooldown above."""
    redis = RedisConnection(
        url, prefix=prefix, socket_timeout_s=SOCKET_TIMEOUT_S, cooldown_s=COOLDOWN_S
    )
    cache = TieredCache(redis=redis, listener_retry_s=COOLDOWN_S)
    await cache.start()
    return redis, cache


def test_a_redis_outage_mid_burst_loses_no_call_and_stalls_none(
    own_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = own_redis

    async def scenario() -> None:
        redis, cache = await _started_cache(url, "outage:")

        async def load_for(i: int) -> dict[str, int]:
            return {"key": i}

        durations: list[float] = []
        answered = 0

        async def one(i: int) -> None:
            nonlocal answered
            started = time.perf_counter()
            value, _ = await cache.get_or_load("burst", str(i), lambda: load_for(i))
            durations.append(time.perf_counter() - started)
            assert value == {"key": i}
            answered += 1

        try:
            for wave in range(16):
                if wave == 5:
                    os.kill(proc.pid, signal.SIGSTOP)  # hung: calls must give up at the timeout
                if wave == 10:
                    proc.kill()  # gone: connections are refused
                    proc.wait(timeout=10)
                cache.l1.clear()  # every call of every wave goes past L1 to Redis
                await asyncio.gather(*(one(i) for i in range(20)))
                await cache.flush()
                if wave >= 5:
                    await asyncio.sleep(COOLDOWN_S / 3)  # let the breaker close now and then
            s = cache.stats()
        finally:
            await cache.close()
            await redis.close()

        assert answered == 16 * 20
        assert max(durations) < STALL_BOUND_S, f"a call stalled {max(durations):.3f} s"
        # Redis answered before the outage (not every call: on a busy machine a new connection
        # can miss the 50 ms timeout too, which is the breaker doing its job)
        assert s["L2"]["hits"] > 0
        assert s["L2"]["errors"] >= 1
        assert s["L2"]["breaker_open"] >= 1
        assert s["loader_calls"] >= 20

    asyncio.run(scenario())


def test_an_invalidation_redis_missed_is_sent_again_once_it_answers(
    own_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = own_redis

    async def scenario() -> None:
        redis, cache = await _started_cache(url, "resend:")

        async def load() -> str:
            return "old"

        try:
            await cache.get_or_load("user", "u", load)
            await cache.flush()
            os.kill(proc.pid, signal.SIGSTOP)  # a blip: Redis keeps its data
            await cache.invalidate("user", "u")
            assert cache.stats()["invalidations_unsent"] == 1
            os.kill(proc.pid, signal.SIGCONT)
            deadline = time.monotonic() + 5
            n = 0
            while cache.stats()["invalidations_unsent"]:
                assert time.monotonic() < deadline, "the invalidation was never sent again"
                await asyncio.sleep(COOLDOWN_S / 3)
                n += 1
                await cache.get_or_load("other", str(n), load)  # a miss notices Redis is back
        finally:
            await cache.close()
            await redis.close()

    asyncio.run(scenario())
    stored = sync_redis.Redis.from_url(url).get("resend:cache:user:u")
    assert stored == b"-"  # the old value is gone: a tombstone stands in its place

"""The executor: a round trip, the timeout path, and throughput with every worker busy.

``Executor.run`` adds bookkeeping (counters under a lock, a deadline the worker can see,
``asyncio.wait_for``) to a bare ``loop.run_in_executor``; the round trip is set beside that
bare call, its physical anchor, so the overhead reads as a ratio of medians.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from velro.errors import OperationTimeout
from velro.executor import Executor

WORKERS = 4
# Calls per round in the saturation benchmark: four per worker keeps every worker busy and a
# queue behind them for the whole round.
SATURATION_CALLS = WORKERS * 4
# A real piece of work per call: SHA-256 of 64 KiB (hashlib releases the GIL above 2 KiB, so
# workers do run in parallel on the 2 cores).
PAYLOAD = bytes(range(256)) * 256
TIMEOUT_S = 0.002


def noop(x: int) -> int:
    return x


def digest() -> str:
    return hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(scope="module")
def executor() -> Iterator[Executor]:
    ex = Executor(WORKERS, {"db": 5.0, "hash": 5.0, "short": TIMEOUT_S})
    yield ex
    ex.shutdown()


def test_executor_anchor_run_in_executor(benchmark: Any, loop: Any, run: Any) -> None:
    """Physical anchor: a bare ``loop.run_in_executor`` round trip to a pool of the same size."""
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        benchmark.extra_info.update(anchor=None, tier="executor")
        result = benchmark(lambda: run(loop.run_in_executor(pool, noop, 7)))
    assert result == 7


def test_executor_round_trip(benchmark: Any, run: Any, executor: Executor) -> None:
    """``await Executor.run("db", f)`` of a function that does nothing."""
    benchmark.extra_info.update(anchor="test_executor_anchor_run_in_executor", tier="executor")
    result = benchmark(lambda: run(executor.run("db", noop, 7)))
    assert result == 7


def test_executor_timeout(benchmark: Any, run: Any, executor: Executor, rounds: Any) -> None:
    """A call that outlives its 2 ms timeout: how soon after the timeout the caller is free."""
    gates: list[threading.Event] = []

    def blocked() -> None:
        gates[-1].wait(5.0)  # held until the next round releases it, never a fixed sleep

    def new_gate() -> tuple[tuple[()], dict[str, Any]]:
        if gates:
            gates[-1].set()  # free the worker the previous round left behind
        gates.append(threading.Event())
        return (), {}

    async def call() -> bool:
        try:
            await executor.run("short", blocked)
        except OperationTimeout:
            return True
        return False

    before = executor.stats().timeouts
    benchmark.extra_info.update(anchor=None, tier="executor", timeout_s=TIMEOUT_S)
    try:
        timed_out = benchmark.pedantic(lambda: run(call()), setup=new_gate, rounds=rounds(200))
    finally:
        for gate in gates:
            gate.set()
    assert timed_out
    assert executor.stats().timeouts - before == len(gates)


def test_executor_saturated(benchmark: Any, run: Any, executor: Executor) -> None:
    """SATURATION_CALLS calls at once on WORKERS workers: every worker busy, a queue behind."""

    async def burst() -> list[str]:
        return await asyncio.gather(
            *(executor.run("hash", digest) for _ in range(SATURATION_CALLS))
        )

    benchmark.extra_info.update(
        anchor="test_executor_saturated_anchor", tier="executor", calls_per_round=SATURATION_CALLS
    )
    results = benchmark(lambda: run(burst()))
    assert results == [digest()] * SATURATION_CALLS


def test_executor_saturated_anchor(
    benchmark: Any, loop: asyncio.AbstractEventLoop, run: Any
) -> None:
    """Anchor of the saturation benchmark: the same burst through bare ``run_in_executor``."""
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:

        async def burst() -> list[str]:
            return await asyncio.gather(
                *(loop.run_in_executor(pool, digest) for _ in range(SATURATION_CALLS))
            )

        benchmark.extra_info.update(anchor=None, tier="executor", calls_per_round=SATURATION_CALLS)
        results = benchmark(lambda: run(burst()))
    assert results == [digest()] * SATURATION_CALLS

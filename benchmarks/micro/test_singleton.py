"""The database singleton: warm access, access from 8 threads at once, first creation.

The story's fix was a singleton with "thread-safe double-checked locking"; these measure what
that costs. A warm access must take no lock at all (the fast path reads a dict and an
attribute), so its time is set beside a plain dict lookup, its physical anchor.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from velro.db import Database

THREADS = 8
# Accesses per thread per round: enough that the round measures contention on the lock-free
# path rather than the cost of handing 8 tasks to the pool.
ACCESSES_PER_THREAD = 2_000


def test_singleton_anchor_dict(benchmark: Any, sqlite_url: str) -> None:
    """Physical anchor: one lookup in a plain dict of the same key shape."""
    table = {(sqlite_url, True): object()}
    key = (sqlite_url, True)
    benchmark.extra_info.update(anchor=None, tier="singleton")
    value = benchmark(table.get, key)
    assert value is table[key]


def test_singleton_warm(benchmark: Any, sqlite_url: str) -> None:
    """``Database.instance(url).engine`` once the engine exists: the per-request path."""
    first = Database.instance(sqlite_url).engine
    benchmark.extra_info.update(anchor="test_singleton_anchor_dict", tier="singleton")

    def access() -> Any:
        return Database.instance(sqlite_url).engine

    engine = benchmark(access)
    assert engine is first


def test_singleton_8_threads(benchmark: Any, sqlite_url: str) -> None:
    """8 threads at once, each doing ACCESSES_PER_THREAD warm accesses; time per round."""
    Database.instance(sqlite_url).engine  # noqa: B018 - warm it: this measures the fast path
    start = threading.Barrier(THREADS)

    def worker() -> set[int]:
        start.wait()  # all 8 begin together, so they really contend
        seen = set()
        for _ in range(ACCESSES_PER_THREAD):
            seen.add(id(Database.instance(sqlite_url).engine))
        return seen

    with ThreadPoolExecutor(max_workers=THREADS) as pool:

        def round_() -> set[int]:
            futures = [pool.submit(worker) for _ in range(THREADS)]
            return set().union(*(f.result() for f in futures))

        benchmark.extra_info.update(
            anchor=None, tier="singleton", accesses_per_round=THREADS * ACCESSES_PER_THREAD
        )
        seen = benchmark(round_)
    # every thread saw the one engine: the singleton held under contention
    assert seen == {id(Database.instance(sqlite_url).engine)}


def test_singleton_first_creation(benchmark: Any, tmp_path: Path, rounds: Any) -> None:
    """The first ``Database.instance(url).engine`` for a URL: building the engine and pool."""
    counter = itertools.count()
    urls: list[str] = []

    def fresh_url() -> tuple[tuple[str], dict[str, Any]]:
        # a URL never seen before, so every round is a cold start without closing the
        # instances other benchmarks hold (Database.reset would)
        urls.append(f"sqlite:///{tmp_path / f'first-{next(counter)}.db'}")
        return (urls[-1],), {}

    def create(url: str) -> Any:
        return Database.instance(url).engine

    benchmark.extra_info.update(anchor=None, tier="singleton")
    engine = benchmark.pedantic(create, setup=fresh_url, rounds=rounds(50))
    assert engine is Database.instance(urls[-1]).engine
    for url in urls:
        Database.instance(url).close()

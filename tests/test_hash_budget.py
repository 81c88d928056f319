"""The hashing budget: one budget across worker processes, and sign-ins past its queue refused
at once with 503 and Retry-After. Real argon2id, real processes, a real socket."""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import API, PASSWORD, serve
from velro.errors import ApiError
from velro.hashbudget import HashBudget


def _hash_in_budget(directory: str, log: str, rounds: int) -> None:
    """A worker process: hash ``rounds`` times within the shared budget, logging each span."""
    from argon2 import PasswordHasher

    hasher = PasswordHasher(time_cost=3, memory_cost=8192, parallelism=1)
    budget = HashBudget(slots=1, queue_max=8, directory=directory)

    def timed_hash() -> tuple[float, float]:
        start = time.monotonic()
        hasher.hash(PASSWORD)
        return start, time.monotonic()

    held = budget.wrap(timed_hash)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # two threads want the one slot
        spans = list(pool.map(lambda _: held(), range(rounds)))
    with open(log, "a", encoding="utf-8") as out:
        out.writelines(f"{a!r} {b!r}\n" for a, b in spans)


def test_two_processes_never_hash_at_once_beyond_the_shared_slots(tmp_path: Path) -> None:
    slots, log = tmp_path / "slots", tmp_path / "spans.txt"
    ctx = multiprocessing.get_context("spawn")  # as uvicorn starts its workers
    procs = [ctx.Process(target=_hash_in_budget, args=(str(slots), str(log), 6)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    spans = sorted(tuple(map(float, line.split())) for line in log.read_text().splitlines())
    assert len(spans) == 12
    # one slot: every hash of both processes ran alone (monotonic clocks are system-wide)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end


def test_sign_ins_past_the_queue_are_refused_at_once_with_retry_after(
    live_server: Callable[..., Any], make_settings: Callable[..., Any]
) -> None:
    # a dear hash (~0.2-0.5 s each here) and room for two sign-ins at a time in the process
    settings = make_settings(
        argon2_time_cost=12, argon2_memory_kib=19456, hash_queue_max=2, hash_timeout_s=60.0
    )
    base = serve(live_server, settings).url + API
    with httpx.Client(base_url=base, timeout=60) as client:
        r = client.post("/auth/register", json={"email": "a@example.com", "password": PASSWORD})
        assert r.status_code == 201, r.text

    def sign_in(_: int) -> tuple[httpx.Response, float]:
        start = time.monotonic()
        with httpx.Client(base_url=base, timeout=60) as c:
            r = c.post("/auth/login", json={"email": "a@example.com", "password": PASSWORD})
        return r, time.monotonic() - start

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(sign_in, range(8)))
    ok = [elapsed for r, elapsed in results if r.status_code == 200]
    refused = [(r, elapsed) for r, elapsed in results if r.status_code == 503]
    assert len(ok) + len(refused) == 8
    assert 2 <= len(ok) < 8
    assert refused
    for r, elapsed in refused:
        body = r.json()["error"]
        assert body["code"] == "overloaded"
        assert body["request_id"] == r.headers["x-request-id"]
        assert r.headers["retry-after"] == "1"
        # refused without waiting for a hash: quicker than the quickest granted sign-in
        assert elapsed < min(ok)


def test_a_hashing_thread_runs_niced_and_the_event_loop_thread_does_not() -> None:
    budget = HashBudget(slots=1, queue_max=1, nice=5)

    def own_priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    base = own_priority()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(budget.wrap(own_priority)).result() == min(base + 5, 19)
    assert own_priority() == base  # only the hashing thread was niced


def test_the_queue_bound_is_a_wait_measured_on_the_hashes_themselves() -> None:
    from argon2 import PasswordHasher

    hasher = PasswordHasher(time_cost=6, memory_cost=19456, parallelism=1)
    budget = HashBudget(slots=2, queue_max=1000, wait_max_s=0.25)
    held = budget.wrap(hasher.hash)
    spans = []
    for _ in range(30):
        start = time.perf_counter()
        held(PASSWORD)
        spans.append(time.perf_counter() - start)
    spans.sort()
    # the mean follows the hashes' real cost, not the first guess
    assert spans[0] * 0.8 <= budget.mean_hash_s <= spans[-1] * 1.2
    admitted = 0
    with contextlib.suppress(ApiError):
        while admitted < 1000:
            budget.admit()
            admitted += 1
    # refused once the hashes ahead would hold a newcomer past 0.25 s on two slots, far
    # before the count bound
    assert admitted == math.floor(0.25 * 2 / budget.mean_hash_s) + 1
    assert admitted < 1000
    assert budget.refused == 1

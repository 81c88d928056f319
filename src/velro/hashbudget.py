"""The CPU budget of password hashing, shared by every worker process of one service.

argon2id is CPU-bound (about 18 ms of a core per hash with the OWASP minimum). Each process
has a hashing pool, but a pool per process is not a budget: two uvicorn workers with one
hashing thread each on a 2-core machine hash on both cores at once and leave the event loops
none. So a hash also takes one of ``slots`` slots that all workers share: a slot is an
exclusive ``flock`` on one file of a directory they all know (``VELRO_HASH_SLOTS_DIR``, made
by ``velro serve`` for its workers). The kernel releases a lock when its process dies, so a
crashed worker never holds a slot. Without a directory the budget is the process's own (a
semaphore).

Hashing threads also run a little below the event loops (``nice``, per thread, 2 steps by
default): when the cores are busy, the loops, whose token checks take a millisecond, are
preferred. Measured on this 2-core machine during 10,000-user ramps, with the service itself
niced below the load generator by the runner: one slot in all hashed at about 40 ms a hash,
less than the ramp's 20 sign-ins a second plus their retries, and refused a third of them;
two slots niced 10 further starved behind the generator and refused about as many.

Sign-ins queue for a slot within their own latency budget, never beside it: a new one is
refused at once with 503 ``overloaded`` and ``Retry-After`` (not after the 5 s hash timeout),
and counted, when the hashes already waiting or running in this process would keep it waiting
longer than ``wait_max_s`` (their number times the recent mean hash, over this process's
share of the slots), or past ``queue_max`` of them whatever the hash costs. The wait is a
measure, not a count, because a hash's cost moves with the load: about 18 ms of a core on a
quiet machine, 40 ms when the cores are shared with 10,000 users' token checks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

from velro.errors import ApiError

__all__ = ["HashBudget", "overloaded"]

P = ParamSpec("P")
T = TypeVar("T")


def overloaded(message: str, retry_after_s: int = 1) -> ApiError:
    """The contract's 503 for load the service refuses rather than queues."""
    return ApiError(503, "overloaded", message, {"Retry-After": str(retry_after_s)})


# the mean hash before any is measured: argon2id at the OWASP minimum on this kind of core
FIRST_HASH_S = 0.02
# how fast the mean follows a change of cost: about the last ten hashes
MEAN_WEIGHT = 0.1


class HashBudget:
    def __init__(
        self,
        slots: int,
        queue_max: int,
        directory: str = "",
        nice: int = 0,
        *,
        wait_max_s: float = float("inf"),
        share: float | None = None,
    ) -> None:
        self.slots = slots
        self.queue_max = queue_max
        self.nice = nice
        self.wait_max_s = wait_max_s
        # the slots this process can count on: all of them for one process, its part of them
        # when several workers share the directory
        self.share = max(1.0, float(slots) if share is None else share)
        self.mean_hash_s = FIRST_HASH_S
        self.shared = bool(directory)
        self._semaphore = threading.BoundedSemaphore(slots)
        self._paths = [Path(directory) / f"slot-{i}" for i in range(slots)] if directory else []
        for path in self._paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
        self._local = threading.local()  # each hashing thread keeps its slot files open
        self.pending = 0  # hashes of this process waiting for a slot or running
        self.refused = 0

    def expected_wait_s(self) -> float:
        """How long a hash admitted now would wait for a slot, by the recent mean hash."""
        return self.pending * self.mean_hash_s / self.share

    def admit(self) -> None:
        """Count one more hash in this process, or refuse it (503) past the queue bound."""
        if self.pending >= self.queue_max or self.expected_wait_s() > self.wait_max_s:
            self.refused += 1
            raise overloaded("Too many sign-ins at once; try again in a second.")
        self.pending += 1

    def release(self) -> None:
        self.pending -= 1

    def wrap(self, func: Callable[P, T]) -> Callable[P, T]:
        """``func`` run while holding a slot: for the hashing threads."""

        def held(*args: P.args, **kwargs: P.kwargs) -> T:
            self._lower_priority()
            with self._slot():
                began = time.perf_counter()
                try:
                    return func(*args, **kwargs)
                finally:
                    # one float store: hashing threads may race, and either value is a mean
                    spent = time.perf_counter() - began
                    self.mean_hash_s += MEAN_WEIGHT * (spent - self.mean_hash_s)

        return held

    def _lower_priority(self) -> None:
        """Once per hashing thread: Linux schedules threads, so this thread alone is niced."""
        if self.nice and not getattr(self._local, "niced", False):
            self._local.niced = True
            with contextlib.suppress(OSError):  # not permitted: run at normal priority
                tid = threading.get_native_id()
                os.setpriority(
                    os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + self.nice
                )

    @contextmanager
    def _slot(self) -> Iterator[None]:
        if not self.shared:
            with self._semaphore:
                yield
            return
        fds: list[int] | None = getattr(self._local, "fds", None)
        if fds is None:
            fds = self._local.fds = [os.open(p, os.O_RDWR) for p in self._paths]
        taken = None
        for fd in fds:  # a free slot if there is one
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            taken = fd
            break
        if taken is None:
            # every slot busy: wait on one, spread over the slots by thread
            taken = fds[threading.get_ident() % len(fds)]
            fcntl.flock(taken, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(taken, fcntl.LOCK_UN)

    def stats(self) -> dict[str, int | float | bool]:
        return {
            "slots": self.slots,
            "shared": self.shared,
            "pending": self.pending,
            "queue_max": self.queue_max,
            "wait_max_ms": round(self.wait_max_s * 1000, 1),
            "mean_hash_ms": round(self.mean_hash_s * 1000, 2),
            "nice": self.nice,
            "refused": self.refused,
        }

"""Password hashing with argon2id, always off the event loop.

The parameters default to the OWASP Password Storage Cheat Sheet minimum for argon2id
(m=19 MiB, t=2, p=1; ``VELRO_ARGON2_*``). Every hash and verify goes through the executor's
``hash`` kind, timed as ``hash`` in ``Server-Timing``, within the CPU budget every worker
process of the service shares (``hashbudget``); in the degraded profile the executor runs it
inline, on the event loop, which is exactly the story's failure.

An unknown email is verified against a dummy hash made with the same parameters, so that
"no such account" costs the same time as "wrong password" (OWASP Authentication Cheat
Sheet, "Authentication and error messages").
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from velro import timing
from velro.executor import Executor
from velro.hashbudget import HashBudget
from velro.settings import Settings

__all__ = ["Passwords"]

P = ParamSpec("P")
T = TypeVar("T")


class Passwords:
    """The process's argon2id hasher, built once from the settings."""

    def __init__(
        self, settings: Settings, executor: Executor, budget: HashBudget | None = None
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._executor = executor
        self._budget = budget
        self._dummy: str | None = None

    # -- blocking primitives (run in a worker) -------------------------------------------

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the stored hash was made with other parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    # -- the async surface ---------------------------------------------------------------

    async def start(self) -> None:
        """Make the dummy hash now, so the first unknown-email login costs one hash, not two."""
        if self._dummy is None:
            self._dummy = await self._run(self.hash_sync, secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        with timing.timed("hash"):
            return await self._run(self.hash_sync, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Verify ``password``; ``None`` (no such account) verifies against the dummy hash.

        The dummy path does the same work as a real mismatch and always answers False.
        """
        if password_hash is None:
            dummy = self._dummy
            if dummy is None:
                # made once per process, with the current parameters, from a random secret
                dummy = self._dummy = await self.hash(secrets.token_urlsafe(16))
            with timing.timed("hash"):
                await self._run(self.verify_sync, dummy, password)
            return False
        with timing.timed("hash"):
            return await self._run(self.verify_sync, password_hash, password)

    def budget_stats(self) -> dict[str, int | float | bool] | None:
        return self._budget.stats() if self._budget is not None else None

    async def _run(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``func`` in the hashing pool, within the service-wide budget (``hashbudget``)."""
        if self._budget is None:  # degraded: on the event loop, unbounded, as in the story
            return await self._executor.run("hash", func, *args, **kwargs)
        self._budget.admit()  # 503 at once past the queue bound
        try:
            return await self._executor.run("hash", self._budget.wrap(func), *args, **kwargs)
        finally:
            self._budget.release()

"""L1: the in-process tier, a size-capped LRU whose entries each carry their own expiry.

A hit is a dict lookup and a clock read (about 1 µs, ``benchmarks``): it is the hot path of
every authenticated request. ``cachetools.TLRUCache`` gives LRU eviction under a size cap and a
per-entry time-to-use, which the tiered cache needs because an entry's expiry is the smaller of
the L1 TTL and the expiry the value chose (a denial lives shorter than an allow).

Each entry also remembers when it was stored, so that a lookup can refuse one older than it
may trust (``max_age_s``): the tiered cache keeps entries for ``ttl_s`` while other processes'
invalidations reach it, and trusts them only ``max_age_s`` when they may not.
"""

from __future__ import annotations

import math
import time
from typing import Any

from cachetools import TLRUCache

__all__ = ["L1Cache"]


def _expiry(_key: str, item: tuple[Any, float, float], _now: float) -> float:
    return item[1]


class L1Cache:
    """Values keyed by storage key; ``get`` answers the value or ``MISSING``."""

    MISSING: Any = object()

    def __init__(self, *, ttl_s: float, max_entries: int) -> None:
        if ttl_s <= 0 or max_entries <= 0:
            raise ValueError(
                f"L1 ttl_s={ttl_s!r} max_entries={max_entries!r}; give positive numbers"
            )
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        # (value, expires at, stored at), monotonic clock
        self._data: TLRUCache[str, tuple[Any, float, float]] = TLRUCache(
            maxsize=max_entries, ttu=_expiry, timer=time.monotonic
        )

    def get(self, key: str, max_age_s: float | None = None) -> Any:
        """The value, or ``MISSING``; also ``MISSING`` when stored over ``max_age_s`` ago."""
        item = self._data.get(key)
        if item is None:
            return self.MISSING
        if max_age_s is not None and time.monotonic() - item[2] > max_age_s:
            self._data.pop(key, None)
            return self.MISSING
        return item[0]

    def set(
        self, key: str, value: Any, deadline: float | None = None, *, capped: bool = True
    ) -> None:
        """Keep ``value`` for the L1 TTL, or until ``deadline`` (epoch seconds) if sooner;
        ``capped=False`` (a versioned key, see TieredCache): until ``deadline`` alone."""
        ttl = self.ttl_s if capped or deadline is None else math.inf
        if deadline is not None:
            ttl = min(ttl, deadline - time.time())
        if ttl <= 0:
            self._data.pop(key, None)
            return
        now = time.monotonic()
        self._data[key] = (value, now + ttl, now)

    def pop(self, key: str) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

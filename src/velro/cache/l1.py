"""L1: the in-process tier, a size-capped LRU whose entries each carry their own expiry.

A hit is a dict lookup and a clock read (about 1 µs, ``benchmarks``): it is the hot path of
every authenticated request. ``cachetools.TLRUCache`` gives LRU eviction under a size cap and a
per-entry time-to-use, which the tiered cache needs because an entry's expiry is the smaller of
the L1 TTL and the expiry the value chose (a denial lives shorter than an allow).
"""

from __future__ import annotations

import time
from typing import Any

from cachetools import TLRUCache

__all__ = ["L1Cache"]


def _expiry(_key: str, item: tuple[Any, float], _now: float) -> float:
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
        self._data: TLRUCache[str, tuple[Any, float]] = TLRUCache(
            maxsize=max_entries, ttu=_expiry, timer=time.monotonic
        )

    def get(self, key: str) -> Any:
        item = self._data.get(key)
        return self.MISSING if item is None else item[0]

    def set(self, key: str, value: Any, deadline: float | None = None) -> None:
        """Keep ``value`` for the L1 TTL, or until ``deadline`` (epoch seconds) if sooner."""
        ttl = self.ttl_s
        if deadline is not None:
            ttl = min(ttl, deadline - time.time())
        if ttl <= 0:
            self._data.pop(key, None)
            return
        self._data[key] = (value, time.monotonic() + ttl)

    def pop(self, key: str) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

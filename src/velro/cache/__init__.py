"""The multi-tier cache (placeholder interface; issue 3 fills it in).

``TieredCache.get_or_load(namespace, key, loader)`` answers ``(value, tier)`` where tier is
``"L1"``, ``"L2"``, ``"L3"`` or ``"miss"`` (the loader ran). Values are JSON-serialisable.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["TieredCache"]

T = TypeVar("T")


class TieredCache:
    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled

    async def get_or_load(
        self,
        namespace: str,
        key: str,
        loader: Callable[[], Awaitable[T]],
        *,
        ttl_s: float | None = None,
    ) -> tuple[T, str]:
        return await loader(), "miss"

    async def invalidate(self, namespace: str, key: str) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        return None

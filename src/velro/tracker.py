"""The performance tracker (placeholder interface; issue 3 fills it in)."""

from __future__ import annotations

from typing import Any

__all__ = ["Tracker"]


class Tracker:
    def record(self, route: str, status: int, duration_ms: float) -> None:
        """Called by the middleware once per request with its server-side time."""

    def snapshot(self) -> dict[str, Any]:
        return {}

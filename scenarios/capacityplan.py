"""The level a capacity search holds next, read from a file the runner rewrites.

`velro-perf capacity` chooses each step's level after it has judged the previous one (it
bisects), so the levels cannot be a shape's fixed stages. The runner writes the level to hold
into a small JSON file (atomically: a reader sees the old level or the new one, never half),
and the shape's ``tick`` (once a second, on the master or the single local process) reads it
when it changed::

    {"users": 4000, "spawn_rate": 20, "open_rate": null, "stop": false}

``users`` and ``spawn_rate`` are what Locust's LoadTestShape returns; ``open_rate`` is the open
model's total requests per second, handed to each generating process (the master sends each
worker its share, message ``velro_rate``); ``stop`` ends the test.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velro_perf.scenarios.errors import ScenarioConfigError

__all__ = ["RATE_MESSAGE", "Level", "PlanFile", "parse_level"]

log = logging.getLogger("velro.scenarios")

RATE_MESSAGE = "velro_rate"


@dataclass(frozen=True)
class Level:
    users: int
    spawn_rate: float
    open_rate: float | None = None
    stop: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "spawn_rate": self.spawn_rate,
            "open_rate": self.open_rate,
            "stop": self.stop,
        }


def parse_level(raw: Any, where: str) -> Level:
    """A level from the plan file's JSON; ScenarioConfigError naming the problem."""
    if not isinstance(raw, dict):
        raise ScenarioConfigError(f"{where} holds {raw!r}; give a JSON object")
    users, spawn, rate = raw.get("users"), raw.get("spawn_rate"), raw.get("open_rate")
    if isinstance(users, bool) or not isinstance(users, int) or users < 0:
        raise ScenarioConfigError(f"{where}: users is {users!r}; give a whole number >= 0")
    if not isinstance(spawn, int | float) or not math.isfinite(spawn) or spawn <= 0:
        raise ScenarioConfigError(f"{where}: spawn_rate is {spawn!r}; give a number > 0")
    if rate is not None and (not isinstance(rate, int | float) or not rate > 0):
        raise ScenarioConfigError(f"{where}: open_rate is {rate!r}; give a number > 0 or null")
    return Level(
        int(users), float(spawn), None if rate is None else float(rate), bool(raw.get("stop"))
    )


class PlanFile:
    """The plan file, re-read only when its modification time changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: int | None = None
        self.level: Level | None = None

    def current(self) -> Level | None:
        """The newest level; the last good one while the file is unreadable or malformed."""
        try:
            stamp = self.path.stat().st_mtime_ns
            if stamp == self._stamp:
                return self.level
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            self.level = parse_level(raw, str(self.path))
            self._stamp = stamp
        except (OSError, ValueError, ScenarioConfigError) as error:
            log.error("capacity plan %s not read: %s", self.path, error)
        return self.level

    @staticmethod
    def write(path: Path, level: Level) -> None:
        """Replace the plan atomically (the runner's side)."""
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(level.to_json()), encoding="utf-8")
        temporary.replace(path)

"""The load shapes' sizes, read from fixtures/shapes.toml (the locustfile drives the stages).

The runner needs only what happens around the load: how long warm-up lasts (so the analysis
judges from its end), how much data to seed, and about how long the shape runs (for the
progress line and a watchdog that stops a Locust that does not stop by itself).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velro_perf.errors import ConfigError

__all__ = ["ShapeInfo", "load_shape"]


@dataclass(frozen=True)
class ShapeInfo:
    name: str
    warmup_s: float
    seed_users: int
    seed_teams: int
    seed_projects: int
    duration_s: float | None  # None when the stages do not say
    wait_s: tuple[float, float] | None = None  # the users' think time, [min, max] seconds


def _shape_tables(data: dict[str, Any]) -> dict[str, Any]:
    # accept [smoke], [shape.smoke] and [shapes.smoke]
    for key in ("shapes", "shape"):
        nested = data.get(key)
        if isinstance(nested, dict):
            return nested
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def _duration(table: dict[str, Any]) -> float | None:
    """Total length of the stages: the largest cumulative end time, or the sum of lengths."""
    for key in ("duration_s", "run_time_s", "total_s"):
        if isinstance(table.get(key), int | float):
            return float(table[key])
    stages = table.get("stages") or table.get("stage")
    if not isinstance(stages, list) or not stages:
        return None
    raw = [s.get(k) for s in stages if isinstance(s, dict) for k in ("end_s", "until_s", "at_s")]
    ends = [float(e) for e in raw if isinstance(e, int | float)]
    if ends:
        return max(ends)
    lengths = [
        s.get(k)
        for s in stages
        if isinstance(s, dict)
        for k in ("duration_s", "duration", "hold_s", "ramp_s", "seconds")
    ]
    numbers = [x for x in lengths if isinstance(x, int | float)]
    return float(sum(numbers)) if numbers else None


def load_shape(name: str, path: Path) -> ShapeInfo:
    """The sizes of shape `name` in `path`; ConfigError naming the file and the fix."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(
            f"shapes file {path} does not exist; the locustfile's shapes live there"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"shapes file {path} is not valid TOML: {exc}") from exc
    tables = _shape_tables(data)
    table = tables.get(name)
    if not isinstance(table, dict):
        known = ", ".join(sorted(tables)) or "none"
        raise ConfigError(f"shape {name!r} is not in {path}; known shapes: {known}")

    def number(key: str) -> float:
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(
                f"shape {name!r} in {path}: {key} is {value!r}; give a number of at least 0"
            )
        return float(value)

    return ShapeInfo(
        name=name,
        warmup_s=number("warmup_s"),
        seed_users=int(number("seed_users")),
        seed_teams=int(number("seed_teams")),
        seed_projects=int(number("seed_projects")),
        duration_s=_duration(table),
        wait_s=_wait(table.get("wait_s")),
    )


def _wait(value: Any) -> tuple[float, float] | None:
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        return (float(value[0]), float(value[1]))
    return None

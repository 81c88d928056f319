"""Load shapes as data: the stages, warm-up, seed size and wait range of each named shape.

`fixtures/shapes.toml` holds one table per shape::

    [shapes.smoke]
    description = "CI smoke"
    warmup_s = 10            # the first seconds are warm-up, not judged
    wait_s = [0.5, 2.0]      # each user waits between() these many seconds between tasks
    seed_users = 40          # the seed the shape wants (velro seed, or provisioning)
    seed_teams = 8
    seed_projects = 80
    stages = [               # run one after the other; the shape stops after the last
      { duration_s = 10, users = 40, spawn_rate = 8 },
      { duration_s = 30, users = 40, spawn_rate = 8 },
    ]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.tomlfile import read_toml

__all__ = ["Shape", "Stage", "load_shapes", "parse_shapes"]

_SHAPE_KEYS = {
    "description",
    "warmup_s",
    "wait_s",
    "seed_users",
    "seed_teams",
    "seed_projects",
    "stages",
    "workload",
    "processes",
    "service_workers",
    "access_token_ttl_s",
}
_OPTIONAL_KEYS = {
    "description",
    "workload",
    "processes",
    "service_workers",
    "access_token_ttl_s",
}
_STAGE_KEYS = {"duration_s", "users", "spawn_rate"}


@dataclass(frozen=True)
class Stage:
    """Hold `users` users (reached at `spawn_rate` a second) for `duration_s` seconds."""

    duration_s: float
    users: int
    spawn_rate: float


@dataclass(frozen=True)
class Shape:
    """One named load shape."""

    name: str
    description: str
    warmup_s: float
    wait_s: tuple[float, float]
    seed_users: int
    seed_teams: int
    seed_projects: int
    stages: tuple[Stage, ...]
    # the workload file this shape runs (beside the shapes file); None: the default workload
    workload: str | None = None
    # what holds this shape on the machine it was sized for, when the run does not say:
    # Locust processes and reference-service worker processes (None: one each)
    processes: int | None = None
    service_workers: int | None = None
    # the reference service's access-token lifetime for this shape (velro serve
    # --access-token-ttl): short enough that users refresh during the run; None: its default
    access_token_ttl_s: int | None = None

    def workload_file(self, shapes_file: Path) -> Path | None:
        """The shape's own workload file (beside the shapes file), or None for the default."""
        return None if self.workload is None else shapes_file.parent / self.workload

    @property
    def duration_s(self) -> float:
        return sum(stage.duration_s for stage in self.stages)

    @property
    def peak_users(self) -> int:
        return max(stage.users for stage in self.stages)

    def target_at(self, run_time: float) -> tuple[int, float] | None:
        """The (users, spawn rate) wanted `run_time` seconds in; None once the shape is over."""
        end = 0.0
        for stage in self.stages:
            end += stage.duration_s
            if run_time < end:
                return stage.users, stage.spawn_rate
        return None


def _where(path: str, name: str, key: str) -> str:
    return f"{path}: shape {name!r}, {key}"


def _number(value: Any, where: str, *, positive: bool, integer: bool = False) -> float:
    # bool is an int in Python; `users = true` is a typo, not a count
    ok_type = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type):
        kind = "a whole number" if integer else "a number"
        raise ScenarioConfigError(f"{where} is {value!r}; give {kind}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "above 0" if positive else "0 or more"
        raise ScenarioConfigError(f"{where} is {value!r}; give a number {bound}")
    return float(value)


def _stage(raw: Any, where: str) -> Stage:
    if not isinstance(raw, Mapping):
        raise ScenarioConfigError(
            f"{where} is {raw!r}; give a table {{ duration_s = .., users = .., spawn_rate = .. }}"
        )
    unknown = set(raw) - _STAGE_KEYS
    missing = _STAGE_KEYS - set(raw)
    if unknown:
        raise ScenarioConfigError(
            f"{where} has unknown key(s) {sorted(unknown)}; use {sorted(_STAGE_KEYS)}"
        )
    if missing:
        raise ScenarioConfigError(f"{where} lacks {sorted(missing)}")
    return Stage(
        duration_s=_number(raw["duration_s"], f"{where}.duration_s", positive=True),
        users=int(_number(raw["users"], f"{where}.users", positive=False, integer=True)),
        spawn_rate=_number(raw["spawn_rate"], f"{where}.spawn_rate", positive=True),
    )


def _workload(raw: Any, where: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.endswith(".toml"):
        raise ScenarioConfigError(
            f"{where} is {raw!r}; give the name of a workload file beside the shapes file, "
            'e.g. "workload-sessions.toml"'
        )
    return raw


def _count(raw: Any, where: str) -> int | None:
    if raw is None:
        return None
    return int(_number(raw, where, positive=True, integer=True))


def _shape(name: str, raw: Any, path: str) -> Shape:
    _check_keys(name, raw, path)
    wait = _wait(raw["wait_s"], _where(path, name, "wait_s"))
    stages = _stages(raw["stages"], path, name)
    shape = Shape(
        name=name,
        description=str(raw.get("description", "")),
        warmup_s=_number(raw["warmup_s"], _where(path, name, "warmup_s"), positive=False),
        wait_s=wait,
        seed_users=_seed(raw, "seed_users", path, name),
        seed_teams=_seed(raw, "seed_teams", path, name),
        seed_projects=_seed(raw, "seed_projects", path, name),
        stages=stages,
        workload=_workload(raw.get("workload"), _where(path, name, "workload")),
        processes=_count(raw.get("processes"), _where(path, name, "processes")),
        service_workers=_count(raw.get("service_workers"), _where(path, name, "service_workers")),
        access_token_ttl_s=_count(
            raw.get("access_token_ttl_s"), _where(path, name, "access_token_ttl_s")
        ),
    )
    if shape.warmup_s >= shape.duration_s:
        raise ScenarioConfigError(
            f"{_where(path, name, 'warmup_s')} is {shape.warmup_s:g} but the stages last only "
            f"{shape.duration_s:g} s; leave time to measure after warm-up"
        )
    if shape.peak_users == 0:
        raise ScenarioConfigError(
            f"{_where(path, name, 'stages')}: every stage has 0 users; give one users > 0"
        )
    return shape


def _check_keys(name: str, raw: Any, path: str) -> None:
    """A shape is a table with the known keys, the required ones among them."""
    if not isinstance(raw, Mapping):
        raise ScenarioConfigError(
            f"{path}: shape {name!r} is {raw!r}; give a table [shapes.{name}]"
        )
    unknown = set(raw) - _SHAPE_KEYS
    if unknown:
        raise ScenarioConfigError(
            f"{path}: shape {name!r} has unknown key(s) {sorted(unknown)}; "
            f"use {sorted(_SHAPE_KEYS)}"
        )
    missing = _SHAPE_KEYS - _OPTIONAL_KEYS - set(raw)
    if missing:
        raise ScenarioConfigError(f"{path}: shape {name!r} lacks {sorted(missing)}")


def _wait(wait: Any, where: str) -> tuple[float, float]:
    if not isinstance(wait, list) or len(wait) != 2:
        raise ScenarioConfigError(f"{where} is {wait!r}; give [min, max] seconds, e.g. [1.0, 3.0]")
    low = _number(wait[0], f"{where}[0]", positive=False)
    high = _number(wait[1], f"{where}[1]", positive=False)
    if low > high:
        raise ScenarioConfigError(f"{where} is {wait!r}; the minimum must not exceed the maximum")
    return low, high


def _seed(raw: Mapping[str, Any], key: str, path: str, name: str) -> int:
    return int(_number(raw[key], _where(path, name, key), positive=True, integer=True))


def _stages(stages_raw: Any, path: str, name: str) -> tuple[Stage, ...]:
    if not isinstance(stages_raw, list) or not stages_raw:
        raise ScenarioConfigError(
            f"{_where(path, name, 'stages')} is {stages_raw!r}; give at least one stage"
        )
    return tuple(
        _stage(item, _where(path, name, f"stages[{index}]"))
        for index, item in enumerate(stages_raw)
    )


def parse_shapes(data: Mapping[str, Any], path: str = "<shapes>") -> dict[str, Shape]:
    """Validate the parsed TOML of a shapes file; `path` only names the file in errors."""
    shapes = data.get("shapes")
    if not isinstance(shapes, Mapping) or not shapes:
        raise ScenarioConfigError(f"{path} has no [shapes.<name>] tables; add at least one shape")
    return {name: _shape(name, raw, path) for name, raw in shapes.items()}


def load_shapes(path: str | Path) -> dict[str, Shape]:
    """Read and validate a shapes file."""
    path = Path(path)
    return parse_shapes(read_toml(path, "shapes file", "--velro-shapes"), str(path))

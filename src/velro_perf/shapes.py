"""What the runner needs to know of a load shape, read by the scenarios' own parser.

The locustfile drives the stages; the runner needs only what happens around the load: how
long warm-up lasts (the analysis judges from its end), how much data to seed, about how long
the shape runs (progress and a watchdog), and which workload file it runs (its hash is part
of the configuration). One parser, ``scenarios.shapes``, serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from velro_perf.errors import ConfigError
from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.shapes import load_shapes

__all__ = ["AUTHENTICATION_ONLY", "ShapeInfo", "load_shape", "shape_toml"]

# a workload of token checks alone (GET /auth/me): the calibration target and the generator's
# cost measure the suite on the one request every backend has
AUTHENTICATION_ONLY = "[users]\nauthentication = { weight = 1 }\n"


@dataclass(frozen=True)
class ShapeInfo:
    name: str
    warmup_s: float
    seed_users: int
    seed_teams: int
    seed_projects: int
    duration_s: float | None  # None when not known (a shape given by its sizes only)
    wait_s: tuple[float, float] | None = None  # the users' think time, [min, max] seconds
    workload_file: Path | None = None
    processes: int | None = None  # the shape's default Locust processes
    service_workers: int | None = None  # the shape's default reference-service workers
    peak_users: int | None = None  # the most users at once in any stage
    access_token_ttl_s: int | None = None  # the reference service's, when the shape sets it


def load_shape(name: str, path: Path) -> ShapeInfo:
    """The shape ``name`` of the shapes file ``path``; ConfigError naming the file and the fix."""
    try:
        shapes = load_shapes(path)
    except ScenarioConfigError as exc:
        raise ConfigError(str(exc)) from None
    shape = shapes.get(name)
    if shape is None:
        known = ", ".join(sorted(shapes)) or "none"
        raise ConfigError(f"shape {name!r} is not in {path}; known shapes: {known}")
    return ShapeInfo(
        name=name,
        warmup_s=shape.warmup_s,
        seed_users=shape.seed_users,
        seed_teams=shape.seed_teams,
        seed_projects=shape.seed_projects,
        duration_s=shape.duration_s,
        wait_s=shape.wait_s,
        workload_file=shape.workload_file(path),
        processes=shape.processes,
        service_workers=shape.service_workers,
        peak_users=shape.peak_users,
        access_token_ttl_s=shape.access_token_ttl_s,
    )


def shape_toml(
    name: str,
    *,
    warmup_s: float,
    wait_s: tuple[float, float],
    seed: tuple[int, int, int],
    duration_s: float,
    users: int,
    spawn_rate: float,
    workload: str | None = None,
) -> str:
    """A shapes.toml of one single-stage load shape; `seed` is (users, teams, projects);
    `workload` the shape's workload file, relative to the shapes file."""
    return (
        f"[shapes.{name}]\n"
        + (f'workload = "{workload}"\n' if workload else "")
        + f"warmup_s = {warmup_s:g}\n"
        f"wait_s = [{wait_s[0]:g}, {wait_s[1]:g}]\n"
        f"seed_users = {seed[0]}\nseed_teams = {seed[1]}\nseed_projects = {seed[2]}\n"
        f"stages = [{{ duration_s = {duration_s:g}, users = {users}, "
        f"spawn_rate = {spawn_rate:g} }}]\n"
    )

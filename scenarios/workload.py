"""The mixed workload as data: which kinds of traffic, in what proportion.

`fixtures/workload.toml`::

    [users]                         # one entry per kind of traffic (a user class)
    authentication = { weight = 30 }
    abuse = { fixed_count = 1 }     # an exact number of users instead of a share
    service_key = { weight = 0 }    # 0 switches a kind off

    [authorization]                 # what the authorization users ask
    tasks = { check = 3, project = 2 }
    relation = { own = 4, shared = 2, team = 2, denied = 2 }

    [abuse]
    max_wrong_passwords = 30        # a 429 must come within this many wrong passwords
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.tomlfile import read_toml

__all__ = ["CATEGORIES", "UserMix", "Workload", "load_workload", "parse_workload"]

# the traffic categories of samples.csv that a user class produces (`setup` is never a class)
CATEGORIES = ("authentication", "authorization", "login", "registration", "service_key", "abuse")
_RELATIONS = ("own", "shared", "team", "denied")
_AUTHZ_TASKS = ("check", "project")


@dataclass(frozen=True)
class UserMix:
    """Locust's `weight` and `fixed_count` for one user class."""

    weight: int = 0
    fixed_count: int = 0

    @property
    def enabled(self) -> bool:
        return self.weight > 0 or self.fixed_count > 0


@dataclass(frozen=True)
class Workload:
    users: Mapping[str, UserMix]
    authz_tasks: Mapping[str, int]
    relations: Mapping[str, int]
    max_wrong_passwords: int
    # how many projects of each relation one simulated user keeps coming back to
    working_set: int = 3


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ScenarioConfigError(f"{where} is {value!r}; give a whole number, 0 or more")
    return value


def _weights(raw: Any, names: tuple[str, ...], where: str) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        raise ScenarioConfigError(f"{where} is {raw!r}; give a table of weights for {list(names)}")
    unknown = set(raw) - set(names)
    if unknown:
        raise ScenarioConfigError(
            f"{where} has unknown key(s) {sorted(unknown)}; use {list(names)}"
        )
    weights = {name: _count(raw.get(name, 0), f"{where}.{name}") for name in names}
    if not any(weights.values()):
        raise ScenarioConfigError(
            f"{where} gives every weight 0; give at least one a weight above 0"
        )
    return weights


def parse_workload(data: Mapping[str, Any], path: str = "<workload>") -> Workload:
    """Validate the parsed TOML of a workload file; `path` only names the file in errors."""
    unknown_tables = set(data) - {"users", "authorization", "abuse"}
    if unknown_tables:
        raise ScenarioConfigError(
            f"{path} has unknown table(s) {sorted(unknown_tables)}; "
            "use [users], [authorization], [abuse]"
        )
    users = _users(data.get("users"), path)
    authz, working_set = _authorization(data.get("authorization", {}), path)
    max_wrong = _max_wrong_passwords(data.get("abuse", {}), path)
    return Workload(
        users=users,
        authz_tasks=_weights(
            authz.get("tasks", {"check": 1, "project": 1}),
            _AUTHZ_TASKS,
            f"{path}: authorization.tasks",
        ),
        relations=_weights(
            authz.get("relation", {"own": 1, "shared": 1, "team": 1, "denied": 1}),
            _RELATIONS,
            f"{path}: authorization.relation",
        ),
        max_wrong_passwords=max_wrong,
        working_set=working_set,
    )


def _users(raw_users: Any, path: str) -> dict[str, UserMix]:
    """The [users] table: a weight or a fixed count per kind of traffic."""
    if not isinstance(raw_users, Mapping) or not raw_users:
        raise ScenarioConfigError(
            f"{path} has no [users] table; give each of {list(CATEGORIES)} a weight"
        )
    unknown = set(raw_users) - set(CATEGORIES)
    if unknown:
        raise ScenarioConfigError(
            f"{path}: [users] has unknown kind(s) {sorted(unknown)}; use {list(CATEGORIES)}"
        )
    users: dict[str, UserMix] = {}
    for name in CATEGORIES:
        entry = raw_users.get(name, {})
        where = f"{path}: users.{name}"
        if not isinstance(entry, Mapping) or set(entry) - {"weight", "fixed_count"}:
            raise ScenarioConfigError(
                f"{where} is {entry!r}; give {{ weight = N }} or {{ fixed_count = N }}"
            )
        users[name] = UserMix(
            weight=_count(entry.get("weight", 0), f"{where}.weight"),
            fixed_count=_count(entry.get("fixed_count", 0), f"{where}.fixed_count"),
        )
    if not any(mix.weight for mix in users.values()):
        raise ScenarioConfigError(
            f"{path}: every [users] weight is 0; give at least one kind a weight"
        )
    return users


def _authorization(authz: Any, path: str) -> tuple[Mapping[str, Any], int]:
    """The [authorization] table (its weights are read by the caller) and its working set."""
    if not isinstance(authz, Mapping) or set(authz) - {"tasks", "relation", "working_set"}:
        raise ScenarioConfigError(
            f"{path}: [authorization] is {authz!r}; "
            "give tasks = {..}, relation = {..} and working_set = N"
        )
    working_set = _count(authz.get("working_set", 3), f"{path}: authorization.working_set")
    if working_set == 0:
        raise ScenarioConfigError(
            f"{path}: authorization.working_set is 0; give how many projects of each relation "
            "a user keeps coming back to (1 or more)"
        )
    return authz, working_set


def _max_wrong_passwords(abuse: Any, path: str) -> int:
    if not isinstance(abuse, Mapping) or set(abuse) - {"max_wrong_passwords"}:
        raise ScenarioConfigError(f"{path}: [abuse] is {abuse!r}; give max_wrong_passwords = N")
    max_wrong = _count(abuse.get("max_wrong_passwords", 30), f"{path}: abuse.max_wrong_passwords")
    if max_wrong == 0:
        raise ScenarioConfigError(
            f"{path}: abuse.max_wrong_passwords is 0; give the number after which a 429 must come"
        )
    return max_wrong


def load_workload(path: str | Path) -> Workload:
    """Read and validate a workload file."""
    path = Path(path)
    return parse_workload(read_toml(path, "workload file", "--velro-workload"), str(path))

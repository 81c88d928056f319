"""The seed the scenarios run on: the fixtures JSON `velro seed --out FILE` writes, or the
same structure built by provisioning through the API (scenarios/provision.py)::

    {"password": "...", "service_key": "..." | null,
     "users": [{"id", "email", "own": [..], "shared": [..], "team": [..], "denied": [..]}]}

or the users of a users file (scenarios/usersfile.py), each with a `password` of its own and
the seed's `password` empty.

`own` projects are owned by the user; `shared` are granted to the user directly and `team`
through a team, both at least viewer; `denied` are projects the user may not read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velro_perf.scenarios.errors import ScenarioConfigError

__all__ = ["Seed", "SeedUser", "load_seed", "parse_seed"]

_RELATIONS = ("own", "shared", "team", "denied")


@dataclass(frozen=True)
class SeedUser:
    id: str
    email: str
    own: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    team: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()
    # a users file's user signs in with its own password; "" means the seed's
    password: str = ""

    def projects(self, relation: str) -> tuple[str, ...]:
        return tuple(getattr(self, relation))


@dataclass(frozen=True)
class Seed:
    password: str
    service_key: str | None
    users: tuple[SeedUser, ...]

    def to_json(self) -> dict[str, Any]:
        """The fixtures-file structure (also what travels to workers in a custom message)."""
        return {
            "password": self.password,
            "service_key": self.service_key,
            "users": [
                {
                    "id": user.id,
                    "email": user.email,
                    **({"password": user.password} if user.password else {}),
                    **{rel: list(user.projects(rel)) for rel in _RELATIONS},
                }
                for user in self.users
            ],
        }


def parse_seed(data: Any, source: str = "<fixtures>") -> Seed:
    """Validate a fixtures structure; `source` only names it in errors."""
    if not isinstance(data, Mapping):
        raise ScenarioConfigError(
            f"{source} is not a JSON object; give the file `velro seed --out` wrote"
        )
    password = data.get("password")
    raw_users = data.get("users")
    own_passwords = isinstance(raw_users, list) and all(
        isinstance(raw, Mapping) and raw.get("password") for raw in raw_users
    )
    if not isinstance(password, str) or not (password or own_passwords):
        raise ScenarioConfigError(
            f"{source}: 'password' is {password!r}; give the seeded users' password"
        )
    key = data.get("service_key")
    if key is not None and (not isinstance(key, str) or not key):
        raise ScenarioConfigError(f"{source}: 'service_key' is {key!r}; give a key string or null")
    if not isinstance(raw_users, list) or not raw_users:
        raise ScenarioConfigError(
            f"{source}: 'users' is {raw_users!r}; give a non-empty list of users"
        )
    users = []
    for index, raw in enumerate(raw_users):
        where = f"{source}: users[{index}]"
        if (
            not isinstance(raw, Mapping)
            or not isinstance(raw.get("id"), str)
            or not isinstance(raw.get("email"), str)
        ):
            raise ScenarioConfigError(
                f"{where} is {raw!r}; give an object with 'id' and 'email' strings"
            )
        lists: dict[str, tuple[str, ...]] = {}
        for relation in _RELATIONS:
            value = raw.get(relation, [])
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ScenarioConfigError(
                    f"{where}.{relation} is {value!r}; give a list of project ids"
                )
            lists[relation] = tuple(value)
        own = raw.get("password", "")
        if not isinstance(own, str):
            raise ScenarioConfigError(f"{where}.password is {own!r}; give a string")
        users.append(SeedUser(id=raw["id"], email=raw["email"], password=own, **lists))
    return Seed(password=password, service_key=key, users=tuple(users))


def load_seed(path: str | Path) -> Seed:
    """Read a fixtures file written by `velro seed --out FILE`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioConfigError(
            f"fixtures file {str(path)!r} does not exist; run `velro seed --out FILE` first"
        ) from None
    except ValueError as error:
        raise ScenarioConfigError(
            f"fixtures file {str(path)!r} is not valid JSON: {error}"
        ) from None
    return parse_seed(data, str(path))

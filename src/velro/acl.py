"""ACL versions: the counters that authorization cache keys embed.

A decision is cached under ``user:project:<project version>:<user version>``. Every change
that can alter a decision bumps a version in the same transaction as the change:

    project:<id>   a grant to or revocation from the project, its rename or deletion
    user:<id>      the user joined or left a team

so an entry cached before the change can never answer after it: the key no longer matches.
The versions themselves live in ``acl_versions`` (a missing row is version 0) and are cached
in this process's memory only (never in Redis or L3) for ``l1_ttl_s``. The process that makes
a change raises its own copy at once; every other process reads the new version when its copy
expires. That is the bound on how long another process may answer from the old state:
``l1_ttl_s`` (5 s by default), plus the time of one database read.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from cachetools import TTLCache
from sqlalchemy import Connection, select, text

from velro.db.schema import acl_versions

__all__ = ["VersionCache", "bump_versions", "project_scope", "read_versions", "user_scope"]


def project_scope(project_id: str) -> str:
    return f"project:{project_id}"


def user_scope(user_id: str) -> str:
    return f"user:{user_id}"


# One statement, portable between SQLite (3.35+) and PostgreSQL: insert version 1 or add one,
# and give back the new version so the caller can raise its in-process copy at once.
_BUMP = text(
    "INSERT INTO acl_versions (scope, version) VALUES (:scope, 1) "
    "ON CONFLICT (scope) DO UPDATE SET version = acl_versions.version + 1 "
    "RETURNING version"
)


def bump_versions(conn: Connection, scopes: Iterable[str]) -> dict[str, int]:
    """Add one to each scope's version (inside the caller's transaction); the new versions."""
    return {scope: int(conn.execute(_BUMP, {"scope": scope}).scalar_one()) for scope in scopes}


def read_versions(conn: Connection, scopes: Sequence[str]) -> dict[str, int]:
    """The stored version of each scope (0 when it never changed)."""
    rows = conn.execute(
        select(acl_versions.c.scope, acl_versions.c.version).where(
            acl_versions.c.scope.in_(list(scopes))
        )
    )
    found = {scope: int(version) for scope, version in rows}
    return {scope: found.get(scope, 0) for scope in scopes}


class VersionCache:
    """This process's copy of the versions it used lately, each kept for ``ttl_s``.

    Versions only ever grow, so ``remember`` keeps the larger of what it holds and what it is
    given: a slow read that started before a local bump cannot lower the bumped copy.
    """

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self._entries: TTLCache[str, int] = TTLCache(
            maxsize=max_entries, ttl=ttl_s, timer=time.monotonic
        )
        # a miss is a database read: reported beside the tiered cache's figures
        self.hits = 0
        self.misses = 0

    def get(self, scope: str) -> int | None:
        version = self._entries.get(scope)
        if version is None:
            self.misses += 1
        else:
            self.hits += 1
        return version

    def remember(self, versions: dict[str, int]) -> None:
        for scope, version in versions.items():
            held = self._entries.get(scope)  # not counted: not a lookup of a request
            self._entries[scope] = version if held is None else max(held, version)

    def clear(self) -> None:
        self._entries.clear()

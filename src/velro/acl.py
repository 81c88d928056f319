"""ACL versions: the counters that authorization cache keys embed.

A decision is cached under ``user:project:<project version>:<user version>``. Every change
that can alter a decision bumps a version in the same transaction as the change:

    project:<id>   a grant to or revocation from the project, its rename or deletion
    user:<id>      the user joined or left a team

so an entry cached before the change can never answer after it: the key no longer matches.
The versions themselves live in ``acl_versions`` (a missing row is version 0) and are cached
through the tiered cache (namespace ``acl``). The process that makes a change invalidates the
bumped versions at once (``Authorizer.changed``); the invalidation reaches every other
process over Redis pub/sub within milliseconds, and without Redis their L1 trusts a version
no longer than ``l1_ttl_s``. That is the bound on how long another process may answer from
the old state: ``l1_ttl_s`` (5 s by default) plus one database read, and far less with Redis.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, select, text

from velro.db.schema import acl_versions

__all__ = ["ACL_NAMESPACE", "bump_versions", "project_scope", "read_versions", "user_scope"]

ACL_NAMESPACE = "acl"


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

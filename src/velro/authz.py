"""Authorization: the role a user holds on a project, and what that role may do.

Roles are ordered ``viewer < editor < owner``; ``read`` needs viewer, ``write`` editor,
``delete`` and ``share`` owner (CONTRACT.md, Authorization). A user's role on a project is
the highest of: owner when the project is theirs, a grant to them, a grant to a team they are
a member of. It is computed by one SQL query (``load_role``) and cached through the tiered
cache under a versioned key (``velro.acl``), so that a change of grants or membership can
never be answered from an entry cached before it.

The cached value also carries the project itself, for the caller may read it: ``GET
/projects/{id}`` is then one cache lookup. A rename bumps the project's version like a grant.

No existence oracle: a project that does not exist and one the caller may not read give the
same decision (no role); the routes answer 404 for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import Connection, DateTime, String, text
from starlette.requests import HTTPConnection

from velro import timing
from velro.acl import ACL_NAMESPACE, project_scope, read_versions, user_scope
from velro.audit import AuditBuffer, entry
from velro.errors import ApiError, not_found
from velro.services import Services

__all__ = [
    "ACTIONS",
    "ROLES",
    "Action",
    "Authorizer",
    "Decision",
    "Role",
    "allows",
    "authorizer",
    "load_role",
    "project_body",
]

Role = Literal["viewer", "editor", "owner"]
Action = Literal["read", "write", "delete", "share"]
ROLES: tuple[Role, ...] = get_args(Role)
ACTIONS: tuple[Action, ...] = get_args(Action)

_RANK: dict[str, int] = {"viewer": 1, "editor": 2, "owner": 3}
_BY_RANK: dict[int, Role] = {1: "viewer", 2: "editor", 3: "owner"}
NEEDS: dict[Action, Role] = {
    "read": "viewer",
    "write": "editor",
    "delete": "owner",
    "share": "owner",
}


def allows(role: str | None, action: Action) -> bool:
    """Whether ``role`` (``None``: no role) may do ``action``."""
    return role is not None and _RANK[role] >= _RANK[NEEDS[action]]


# Owner, direct grant or team grant, highest wins: one round trip. The grants lookup walks the
# primary key (project_id, subject_type, subject_id); memberships use ix_team_members_user.
_ROLE_QUERY = text(
    """
    SELECT p.id, p.name, p.owner_id, p.created_at,
        CASE WHEN p.owner_id = :user_id THEN 3 ELSE (
            SELECT MAX(CASE g.role WHEN 'owner' THEN 3 WHEN 'editor' THEN 2
                                   WHEN 'viewer' THEN 1 ELSE 0 END)
            FROM grants g
            WHERE g.project_id = p.id
              AND ((g.subject_type = 'user' AND g.subject_id = :user_id)
                OR (g.subject_type = 'team' AND g.subject_id IN (
                        SELECT tm.team_id FROM team_members tm WHERE tm.user_id = :user_id)))
        ) END AS rank
    FROM projects p
    WHERE p.id = :project_id
    """
).columns(id=String, name=String, owner_id=String, created_at=DateTime(timezone=True))


def iso(at: datetime) -> str:
    """ISO 8601 in UTC (SQLite gives back naive datetimes that were stored as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat()


def project_body(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The contract's project: ``{"id", "name", "owner_id", "created_at"}``."""
    return {
        "id": row["id"],
        "name": row["name"],
        "owner_id": row["owner_id"],
        "created_at": iso(row["created_at"]),
    }


def load_role(conn: Connection, user_id: str, project_id: str) -> dict[str, Any]:
    """``{"role": <role or None>, "project": <body or None>}``; the body only with a role."""
    row = conn.execute(_ROLE_QUERY, {"user_id": user_id, "project_id": project_id}).first()
    if row is None or not row.rank:
        return {"role": None, "project": None}
    return {"role": _BY_RANK[int(row.rank)], "project": project_body(row._mapping)}


@dataclass(frozen=True, slots=True)
class Decision:
    role: Role | None
    project: dict[str, Any] | None
    source: str  # the tier that answered: "L1", "L2", "L3", or "db" when computed

    def allows(self, action: Action) -> bool:
        return allows(self.role, action)


class Authorizer:
    """Decisions for one app: its version cache, its audit buffer, its tiered cache."""

    NAMESPACE = "authz"

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.audit = AuditBuffer(svc.db_call)

    # -- versions ------------------------------------------------------------------------

    async def _version(self, scope: str) -> int:
        async def load() -> int:
            read: dict[str, int] = await self.svc.db_call(read_versions, [scope])
            return read[scope]

        version, _ = await self.svc.cache.get_or_load(ACL_NAMESPACE, scope, load)
        return int(version)

    async def changed(self, versions: dict[str, int]) -> None:
        """Drop the cached versions a change just bumped: at once here, and in other
        processes as the invalidation reaches them (within the L1 TTL without Redis)."""
        for scope in versions:
            await self.svc.cache.invalidate(ACL_NAMESPACE, scope)

    # -- decisions -----------------------------------------------------------------------

    def _ttl(self, value: dict[str, Any]) -> float:
        # A change bumps a version and so the key, never the entry: decisions may live long,
        # past the tiers' TTLs (get_or_load's `versioned`). Denials have a TTL of their own
        # (settings.py says why it is as long as allows').
        settings = self.svc.settings
        return settings.deny_ttl_s if value.get("role") is None else settings.decision_ttl_s

    async def decide(self, user_id: str, project_id: str) -> Decision:
        if not self.svc.cache.enabled:
            # degraded: nothing is cached, so no key needs a version (one query, as the
            # story's original service made)
            key = f"{user_id}:{project_id}"
        else:
            project_v = await self._version(project_scope(project_id))
            user_v = await self._version(user_scope(user_id))
            key = f"{user_id}:{project_id}:{project_v}:{user_v}"

        async def load() -> dict[str, Any]:
            value: dict[str, Any] = await self.svc.db_call(load_role, user_id, project_id)
            return value

        value, tier = await self.svc.cache.get_or_load(
            self.NAMESPACE, key, load, ttl_s=self._ttl, versioned=self.svc.cache.enabled
        )
        ctx = timing.current()
        if ctx is not None:
            # The request's Server-Timing names the decision's tier, not the best of every
            # lookup (the token's user record is nearly always an L1 hit): it then agrees
            # with the body's "source", and a cold decision shows as a miss.
            ctx.cache = tier
        return Decision(
            role=value["role"],
            project=value["project"],
            source="db" if tier == "miss" else tier,
        )

    def deny(self, user_id: str, project_id: str, action: str, decision: Decision) -> None:
        """Write a denial to the audit log (batched)."""
        self.audit.add(
            entry(
                "deny",
                actor_id=user_id,
                project_id=project_id,
                detail={"action": action, "role": decision.role},
            )
        )

    async def check(self, user_id: str, project_id: str, action: Action) -> Decision:
        """The decision for ``action``; a denial is audited."""
        decision = await self.decide(user_id, project_id)
        if not decision.allows(action):
            self.deny(user_id, project_id, action, decision)
        return decision

    async def require(self, user_id: str, project_id: str, action: Action) -> Decision:
        """The decision, or 404 when the caller may not read, 403 when they may not act."""
        decision = await self.decide(user_id, project_id)
        if decision.allows(action):
            return decision
        self.deny(user_id, project_id, action, decision)
        if not decision.allows("read"):
            raise not_found("project")
        raise ApiError(
            403,
            "forbidden",
            f"Your role on this project is {decision.role}; "
            f"to {action} it you need {NEEDS[action]} or higher.",
        )

    def stats(self) -> dict[str, int]:
        """The denial writer's figures."""
        return {
            "audit_written": self.audit.written,
            "audit_lost": self.audit.lost,
            "audit_pending": self.audit.pending,
        }

    async def close(self) -> None:
        """Write the pending denials; call from the app's shutdown, before the executor stops."""
        await self.audit.close()


async def authorizer(conn: HTTPConnection) -> Authorizer:
    """The app's ``Authorizer`` (``Depends(authorizer)``), made by its lifespan."""
    current: Authorizer = conn.app.state.authorizer
    return current

"""Projects and their grants: the repository (functions of a connection, one transaction).

Every change that can alter a decision bumps the project's ACL version in the same
transaction (``velro.acl``) and returns the new versions, for the caller to raise its
in-process copy at once; grants, revocations and deletions write their audit row in that
transaction too, so a change is never without its record.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from sqlalchemy import Connection, delete, select, text, update

from velro.acl import bump_versions, project_scope
from velro.audit import write_entry
from velro.authz import project_body
from velro.db.schema import grants, insert_owned, projects, teams, users

__all__ = [
    "SubjectType",
    "create_project",
    "delete_project",
    "remove_grant",
    "rename_project",
    "set_grant",
    "subject_exists",
]

SubjectType = Literal["user", "team"]

# Insert the grant or change its role: one statement on SQLite and PostgreSQL alike.
_UPSERT_GRANT = text(
    "INSERT INTO grants (project_id, subject_type, subject_id, role) "
    "VALUES (:project_id, :subject_type, :subject_id, :role) "
    "ON CONFLICT (project_id, subject_type, subject_id) DO UPDATE SET role = excluded.role"
)


def create_project(conn: Connection, owner_id: str, name: str) -> dict[str, Any]:
    return project_body(insert_owned(conn, projects, owner_id, name))


def rename_project(
    conn: Connection, project_id: str, name: str
) -> tuple[dict[str, Any] | None, dict[str, int]]:
    """The renamed project (None if it is gone) and the bumped versions.

    The project's version is bumped because cached decisions carry the project's body.
    """
    conn.execute(update(projects).where(projects.c.id == project_id).values(name=name))
    row = conn.execute(select(projects).where(projects.c.id == project_id)).mappings().first()
    if row is None:
        return None, {}
    return project_body(row), bump_versions(conn, [project_scope(project_id)])


def delete_project(conn: Connection, project_id: str, audit_row: dict[str, Any]) -> dict[str, int]:
    conn.execute(delete(grants).where(grants.c.project_id == project_id))
    conn.execute(delete(projects).where(projects.c.id == project_id))
    write_entry(conn, audit_row)
    return bump_versions(conn, [project_scope(project_id)])


def subject_exists(conn: Connection, subject_type: SubjectType, subject_id: str) -> bool:
    table = users if subject_type == "user" else teams
    return conn.execute(select(table.c.id).where(table.c.id == subject_id)).first() is not None


def set_grant(
    conn: Connection,
    project_id: str,
    subject_type: SubjectType,
    subject_id: str,
    role: str,
    audit_row: dict[str, Any],
) -> dict[str, int] | None:
    """Grant ``role``; the bumped versions, or None when the subject does not exist."""
    if not subject_exists(conn, subject_type, subject_id):
        return None
    conn.execute(
        _UPSERT_GRANT,
        {
            "project_id": project_id,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "role": role,
        },
    )
    write_entry(conn, audit_row)
    return bump_versions(conn, [project_scope(project_id)])


def remove_grant(
    conn: Connection,
    project_id: str,
    subject_type: SubjectType,
    subject_id: str,
    audit_row: dict[str, Any],
) -> dict[str, int]:
    """Revoke (idempotent: revoking what is not granted changes nothing and bumps nothing)."""
    removed = conn.execute(
        delete(grants).where(
            grants.c.project_id == project_id,
            grants.c.subject_type == subject_type,
            grants.c.subject_id == subject_id,
        )
    ).rowcount
    audit_row = {**audit_row, "detail": _with_removed(audit_row.get("detail"), removed > 0)}
    write_entry(conn, audit_row)
    return bump_versions(conn, [project_scope(project_id)]) if removed else {}


def _with_removed(detail: str | None, removed: bool) -> str:
    data = json.loads(detail) if detail else {}
    data["removed"] = removed
    return json.dumps(data, sort_keys=True)

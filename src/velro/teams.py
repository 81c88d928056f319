"""Teams and their members: the repository (functions of a connection, one transaction).

Only a team's owner manages its members. The owner is not a member unless added: a team is a
set of people to share with, and its owner may manage it without being in it. A membership
change bumps the member's ACL version (``velro.acl``) in the same transaction and writes its
audit row there too.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Connection, delete, select, text

from velro.acl import bump_versions, user_scope
from velro.audit import write_entry
from velro.db.schema import insert_owned, team_members, teams, users

__all__ = ["MembershipResult", "add_member", "create_team", "remove_member"]

# "no_team": the team does not exist or the caller does not own it (both 404, no oracle);
# "no_user": the user does not exist; otherwise the bumped versions (empty: nothing changed).
MembershipResult = Literal["no_team", "no_user"] | dict[str, int]

_ADD = text(
    "INSERT INTO team_members (team_id, user_id) VALUES (:team_id, :user_id) "
    "ON CONFLICT (team_id, user_id) DO NOTHING"
)


def create_team(conn: Connection, owner_id: str, name: str) -> dict[str, Any]:
    row = insert_owned(conn, teams, owner_id, name)
    return {"id": row["id"], "name": name, "owner_id": owner_id}


def _owned(conn: Connection, team_id: str, actor_id: str) -> bool:
    owner = conn.execute(select(teams.c.owner_id).where(teams.c.id == team_id)).scalar()
    return owner is not None and owner == actor_id


def add_member(
    conn: Connection, team_id: str, user_id: str, actor_id: str, audit_row: dict[str, Any]
) -> MembershipResult:
    if not _owned(conn, team_id, actor_id):
        return "no_team"
    if conn.execute(select(users.c.id).where(users.c.id == user_id)).first() is None:
        return "no_user"
    added = conn.execute(_ADD, {"team_id": team_id, "user_id": user_id}).rowcount
    write_entry(conn, audit_row)
    return bump_versions(conn, [user_scope(user_id)]) if added else {}


def remove_member(
    conn: Connection, team_id: str, user_id: str, actor_id: str, audit_row: dict[str, Any]
) -> MembershipResult:
    if not _owned(conn, team_id, actor_id):
        return "no_team"
    removed = conn.execute(
        delete(team_members).where(
            team_members.c.team_id == team_id, team_members.c.user_id == user_id
        )
    ).rowcount
    write_entry(conn, audit_row)
    return bump_versions(conn, [user_scope(user_id)]) if removed else {}

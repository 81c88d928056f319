"""The decision query, ACL versions and the audit buffer, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, func, select

from velro.acl import bump_versions, read_versions
from velro.audit import AuditBuffer, entry
from velro.authz import ACTIONS, allows, load_role
from velro.db import Database
from velro.db.schema import audit_log, grants, projects, team_members, teams, users


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'decision.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database = Database(url)
    database.create_all()
    yield database
    database.close()


def _user(conn: Connection) -> str:
    uid = str(uuid.uuid4())
    conn.execute(
        users.insert(),
        {
            "id": uid,
            "email": f"{uid}@example.com",
            "password_hash": "x",
            "token_version": 0,
            "created_at": datetime.now(UTC),
        },
    )
    return uid


def _project(conn: Connection, owner: str) -> str:
    pid = str(uuid.uuid4())
    conn.execute(
        projects.insert(),
        {"id": pid, "name": "p", "owner_id": owner, "created_at": datetime.now(UTC)},
    )
    return pid


def _team(conn: Connection, owner: str, *members: str) -> str:
    tid = str(uuid.uuid4())
    conn.execute(
        teams.insert(), {"id": tid, "name": "t", "owner_id": owner, "created_at": datetime.now(UTC)}
    )
    for member in members:
        conn.execute(team_members.insert(), {"team_id": tid, "user_id": member})
    return tid


def _grant(conn: Connection, project: str, kind: str, subject: str, role: str) -> None:
    conn.execute(
        grants.insert(),
        {"project_id": project, "subject_type": kind, "subject_id": subject, "role": role},
    )


def test_the_role_is_the_highest_of_ownership_direct_and_team_grants(db: Database) -> None:
    with db.begin() as conn:
        owner, direct, both, member, team_owner, stranger = (_user(conn) for _ in range(6))
        project, other = _project(conn, owner), _project(conn, owner)
        low, high = _team(conn, team_owner, member, both), _team(conn, team_owner, both)
        _grant(conn, project, "user", direct, "editor")
        _grant(conn, project, "user", both, "viewer")
        _grant(conn, project, "team", low, "viewer")
        _grant(conn, project, "team", high, "owner")
        _grant(conn, other, "user", stranger, "owner")  # another project's grant counts not
        # a grant to a *user* whose id happens to equal a team id must not match as a team
        _grant(conn, project, "user", low, "owner")

    with db.begin() as conn:
        roles = {
            name: load_role(conn, uid, project)["role"]
            for name, uid in {
                "owner": owner,
                "direct": direct,
                "both": both,
                "member": member,
                "team_owner": team_owner,
                "stranger": stranger,
            }.items()
        }
        missing = load_role(conn, owner, str(uuid.uuid4()))
        body = load_role(conn, owner, project)["project"]
    assert roles == {
        "owner": "owner",
        "direct": "editor",
        "both": "owner",
        "member": "viewer",
        "team_owner": None,
        "stranger": None,
    }
    assert missing == {"role": None, "project": None}
    assert body["id"] == project
    assert body["owner_id"] == owner
    assert body["created_at"].endswith("+00:00")


def test_what_each_role_may_do() -> None:
    table = {
        role: {a for a in ACTIONS if allows(role, a)}
        for role in (None, "viewer", "editor", "owner")
    }
    assert table == {
        None: set(),
        "viewer": {"read"},
        "editor": {"read", "write"},
        "owner": {"read", "write", "delete", "share"},
    }


def test_versions_start_at_zero_and_only_grow(db: Database) -> None:
    with db.begin() as conn:
        assert read_versions(conn, ["project:a", "user:b"]) == {"project:a": 0, "user:b": 0}
        assert bump_versions(conn, ["project:a"]) == {"project:a": 1}
        assert bump_versions(conn, ["project:a", "user:b"]) == {"project:a": 2, "user:b": 1}
    with db.begin() as conn:
        assert read_versions(conn, ["project:a", "user:b"]) == {"project:a": 2, "user:b": 1}


def test_denials_are_written_in_batches_and_close_writes_the_rest(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'audit.db'}")
    database.create_all()
    calls: list[int] = []

    async def db_call(fn: Callable[..., Any], *args: Any) -> Any:
        calls.append(len(args[0]))
        return await asyncio.to_thread(database.call, fn, *args)

    async def scenario() -> AuditBuffer:
        buffer = AuditBuffer(db_call, flush_interval_s=0.05)
        for n in range(250):
            buffer.add(entry("deny", actor_id=f"user-{n}", project_id="p"))
        await buffer.close()
        return buffer

    buffer = asyncio.run(scenario())
    with database.begin() as conn:
        written = conn.execute(select(func.count()).select_from(audit_log)).scalar()
    database.close()
    assert written == buffer.written == 250
    assert calls == [250]  # one executemany, not 250 transactions

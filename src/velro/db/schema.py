"""The tables, in SQLAlchemy Core: portable between SQLite and PostgreSQL.

Ids are UUID text (36 characters) so that one schema serves both engines; times are stored
timezone-aware.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "acl_versions",
    "audit_log",
    "cache_entries",
    "grants",
    "insert_owned",
    "metadata",
    "projects",
    "refresh_tokens",
    "service_keys",
    "team_members",
    "teams",
    "users",
]

metadata = MetaData()

UUID_LEN = 36

users = Table(
    "users",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("full_name", String(200), nullable=True),
    Column("password_hash", String(200), nullable=False),
    # Logout bumps it; a token carrying an older version is revoked.
    Column("token_version", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

service_keys = Table(
    "service_keys",
    metadata,
    Column("id", String(UUID_LEN), primary_key=True),
    Column("name", String(200), nullable=False),
    # SHA-256 hex of the key: the key itself is printed once and never stored.
    Column("key_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# One row per refresh token ever issued (velro.refresh): a family is the chain of tokens
# rotated from one login. A consumed row stays, so that the token presented again is known
# as a replay and its family revoked (RFC 9700 4.14.2); an unknown hash is just unknown.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    # SHA-256 hex of the token: the token itself goes to the client only. The primary key is
    # the one indexed read of a rotation.
    Column("token_sha256", String(64), primary_key=True),
    Column("family_id", String(UUID_LEN), nullable=False),
    Column("user_id", String(UUID_LEN), ForeignKey("users.id"), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    # set once, by the conditional UPDATE of the rotation that consumed the token
    Column("consumed_at", DateTime(timezone=True), nullable=True),
    # set on every row of a family on a replay, and of the user's families on logout
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Index("ix_refresh_tokens_family", "family_id"),
    Index("ix_refresh_tokens_user", "user_id"),
)


def _owned(name: str, *extra: Index) -> Table:
    """A table of things a user creates, names and owns: teams and projects."""
    return Table(
        name,
        metadata,
        Column("id", String(UUID_LEN), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("owner_id", String(UUID_LEN), ForeignKey("users.id"), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        *extra,
    )


def insert_owned(conn: Connection, table: Table, owner_id: str, name: str) -> dict[str, Any]:
    """A new row of an owned table (a team, a project) with a fresh id; the row inserted."""
    row = {
        "id": str(uuid.uuid4()),
        "name": name,
        "owner_id": owner_id,
        "created_at": datetime.now(UTC),
    }
    conn.execute(table.insert(), row)
    return row


teams = _owned("teams")

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", String(UUID_LEN), ForeignKey("teams.id"), primary_key=True),
    Column("user_id", String(UUID_LEN), ForeignKey("users.id"), primary_key=True),
    Index("ix_team_members_user", "user_id"),
)

projects = _owned("projects", Index("ix_projects_owner", "owner_id"))

grants = Table(
    "grants",
    metadata,
    Column("project_id", String(UUID_LEN), ForeignKey("projects.id"), primary_key=True),
    Column("subject_type", String(8), primary_key=True),  # "user" or "team"
    Column("subject_id", String(UUID_LEN), primary_key=True),
    Column("role", String(8), nullable=False),  # "viewer", "editor", "owner"
    Index("ix_grants_subject", "subject_type", "subject_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("actor_id", String(UUID_LEN), nullable=True),
    Column("action", String(32), nullable=False),  # "deny", "grant", "revoke", ...
    Column("project_id", String(UUID_LEN), nullable=True),
    Column("detail", Text, nullable=True),
)

# Versions that authorization cache keys embed: a change of grants or membership bumps one,
# so no stale entry of the same version can answer (tests/test_authz_decision.py).
acl_versions = Table(
    "acl_versions",
    metadata,
    Column("scope", String(64), primary_key=True),  # "project:<id>", "user:<id>", ...
    Column("version", Integer, nullable=False),
)

# L3: the cache tier every process shares, even without Redis.
cache_entries = Table(
    "cache_entries",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Column("expires_at", Float, nullable=False),  # epoch seconds
)

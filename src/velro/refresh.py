"""Refresh tokens: opaque, rotated on every use, with reuse detection (RFC 9700, 4.14.2).

A refresh token is 32 random bytes (256 bits, ``secrets.token_urlsafe``) that only the client
ever holds; the database keeps its SHA-256 (``refresh_tokens`` in ``velro.db.schema``), as it
does for service keys. A login starts a *family*; each refresh consumes the token it was given
and issues the family's next one. A consumed token presented again means that two parties hold
the family's tokens (the client and a thief, and the server cannot tell which is which), so the
whole family is revoked, its newest token too. Logout revokes every family of the user.

A rotation is one indexed read (the token's row by its hash, joined to its user's
``token_version`` for the new access token) and one write transaction: the conditional UPDATE
that consumes the token and the INSERT of its successor. The UPDATE decides: it consumes only a
row that is still unconsumed and unrevoked, and its row count says whether this request won.
Two concurrent refreshes of one token therefore cannot both succeed, on SQLite (one writer at a
time) as on PostgreSQL (the second UPDATE waits for the first's row lock, then re-checks its
WHERE on the committed row); the loser is a replay like any other.

Lifetimes are sliding: each token lives ``refresh_token_ttl_s`` from its issue.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, Connection, insert, select, update

from velro import timing
from velro.db.schema import refresh_tokens, users
from velro.errors import ApiError
from velro.services import Services

__all__ = [
    "Presented",
    "Refusal",
    "Rotated",
    "consume",
    "insert_token",
    "issue",
    "new_token",
    "read_token",
    "revoke_family",
    "revoke_user",
    "rotate",
    "rotate_token",
    "token_sha256",
]

log = logging.getLogger("velro")

# RFC 9700 4.14.2 and RFC 6749 10.10: at least 128 bits that cannot be guessed; 256 here
_TOKEN_BYTES = 32

# Why a presented token is refused; "replayed" also revoked its family.
Refusal = Literal["unknown", "expired", "revoked", "replayed"]


def new_token() -> str:
    """A fresh refresh token: 256 random bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(_TOKEN_BYTES)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time velro writes is UTC
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Rotated:
    """A won rotation: whom the new pair is for, at which token version."""

    user_id: str
    token_version: int


# -- repository (functions of a Connection, run inside svc.db_call) ---------------------------


def insert_token(
    conn: Connection,
    sha256: str,
    family_id: str,
    user_id: str,
    now: datetime,
    ttl_s: int,
) -> None:
    conn.execute(
        insert(refresh_tokens).values(
            token_sha256=sha256,
            family_id=family_id,
            user_id=user_id,
            issued_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
    )


_READ = select(
    refresh_tokens.c.family_id,
    refresh_tokens.c.user_id,
    refresh_tokens.c.expires_at,
    refresh_tokens.c.consumed_at,
    refresh_tokens.c.revoked_at,
    users.c.token_version,
).join(users, users.c.id == refresh_tokens.c.user_id)


@dataclass(frozen=True, slots=True)
class Presented:
    """A presented token's row as one read saw it: the state a rotation starts from."""

    sha256: str
    family_id: str
    user_id: str
    token_version: int
    expires_at: datetime
    consumed: bool
    revoked: bool


def read_token(conn: Connection, sha256: str) -> Presented | None:
    """The one indexed read: the token's row by its hash, with its user's token version."""
    row = conn.execute(_READ.where(refresh_tokens.c.token_sha256 == sha256)).first()
    if row is None:
        return None
    return Presented(
        sha256=sha256,
        family_id=row.family_id,
        user_id=row.user_id,
        token_version=row.token_version,
        expires_at=_utc(row.expires_at),
        consumed=row.consumed_at is not None,
        revoked=row.revoked_at is not None,
    )


def consume(
    conn: Connection, seen: Presented, new_sha256: str, now: datetime, ttl_s: int
) -> Rotated | Refusal:
    """The one write: consume the token ``seen`` read, if no one did since, and store its
    successor in the same family; else revoke the family (the race's loser is a replay)."""
    won = conn.execute(
        update(refresh_tokens)
        .where(
            refresh_tokens.c.token_sha256 == seen.sha256,
            refresh_tokens.c.consumed_at.is_(None),
            refresh_tokens.c.revoked_at.is_(None),
        )
        .values(consumed_at=now)
    ).rowcount
    if won != 1:
        # consumed (or revoked) between the read and this write: another request presented
        # the same token at the same time, a replay as much as one that comes later
        revoke_family(conn, seen.family_id, now)
        return "replayed"
    insert_token(conn, new_sha256, seen.family_id, seen.user_id, now, ttl_s)
    return Rotated(user_id=seen.user_id, token_version=seen.token_version)


def rotate_token(
    conn: Connection, old_sha256: str, new_sha256: str, now: datetime, ttl_s: int
) -> Rotated | Refusal:
    """Consume the token ``old_sha256`` names and store its successor, or say why not."""
    seen = read_token(conn, old_sha256)
    if seen is None:
        return "unknown"
    if seen.revoked:
        return "revoked"
    if seen.consumed:
        revoke_family(conn, seen.family_id, now)
        return "replayed"
    if seen.expires_at <= now:
        return "expired"
    return consume(conn, seen, new_sha256, now, ttl_s)


def revoke_family(conn: Connection, family_id: str, now: datetime) -> int:
    """Revoke every token of one family; how many rows this revoked."""
    return _revoke_where(conn, refresh_tokens.c.family_id == family_id, now)


def revoke_user(conn: Connection, user_id: str, now: datetime) -> int:
    """Revoke every token of every family of one user (logout)."""
    return _revoke_where(conn, refresh_tokens.c.user_id == user_id, now)


def _revoke_where(conn: Connection, condition: ColumnElement[bool], now: datetime) -> int:
    """Revoke the unrevoked rows that match, pass after pass until a pass finds none.

    One pass is not enough on PostgreSQL (READ COMMITTED): an UPDATE acts on the rows committed
    when it started. If a rotation holds one of them, the UPDATE waits for it and then revokes
    the consumed parent, but the successor that rotation committed is not among its rows; the
    next pass sees it. A rotation needs an unrevoked parent, so when a pass finds no unrevoked
    row, no rotation of these tokens is in flight. On SQLite the second pass finds nothing.
    """
    total = 0
    while True:
        revoked = conn.execute(
            update(refresh_tokens)
            .where(condition, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount
        if not revoked:
            return total
        total += revoked


# -- services --------------------------------------------------------------------------------


def _refused() -> ApiError:
    # one answer for every refusal: whether a token was ever valid is not the caller's to learn
    return ApiError(
        401,
        "invalid_token",
        "The refresh token is invalid, expired, used or revoked; log in again.",
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


async def issue(svc: Services, user_id: str) -> str:
    """A new family's first token, for a login."""
    token = new_token()
    await svc.db_call(
        insert_token,
        token_sha256(token),
        str(uuid.uuid4()),
        user_id,
        datetime.now(UTC),
        svc.settings.refresh_token_ttl_s,
    )
    return token


async def rotate(svc: Services, presented: str) -> tuple[Rotated, str]:
    """Consume ``presented``; the rotation and the family's next token, else 401."""
    token = new_token()
    outcome = await svc.db_call(
        rotate_token,
        token_sha256(presented),
        token_sha256(token),
        datetime.now(UTC),
        svc.settings.refresh_token_ttl_s,
    )
    if not isinstance(outcome, Rotated):
        if outcome == "replayed":
            # a security event: someone else holds (or held) this family's tokens
            log.warning(
                "request %s: a used refresh token was presented again; its family is revoked",
                timing.request_id(),
            )
        raise _refused()
    return outcome, token

"""Users: the repository (functions of a ``Connection``) and the auth services on top.

Repository functions run inside ``svc.db_call`` (one transaction, off the event loop). The
service functions are what the routes call: ``register``, ``authenticate``, ``logout`` and
``cached_user``, the record behind every token check, read through the tiered cache under
namespace ``"user"`` so that a warm ``GET /auth/me`` makes no database call.

A cached record holds ``token_version``; logout bumps it in the database and then
invalidates the cache entry, so earlier tokens stop working at once in this process and, in
the others, when the cache's invalidation reaches them (within the L1 TTL at worst). In the
same transaction it revokes the user's refresh-token families (``velro.refresh``), which the
database alone decides, so that revocation is at once in every process.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from velro import refresh
from velro.db.schema import users
from velro.errors import ApiError
from velro.services import Services

__all__ = [
    "UserRecord",
    "authenticate",
    "bump_token_version",
    "cached_user",
    "find_login",
    "insert_user",
    "load_user",
    "logout",
    "public",
    "register",
    "revoke_sessions",
    "set_password_hash",
]

# The JSON-serialisable record the cache holds: id, email, full_name, created_at (ISO 8601),
# token_version.
UserRecord = dict[str, Any]

_PUBLIC = ("id", "email", "full_name", "created_at")


def _iso(value: datetime) -> str:
    # SQLite hands back naive datetimes; every time velro writes is UTC
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def public(record: UserRecord) -> dict[str, Any]:
    """The contract's user body: ``{"id", "email", "full_name", "created_at"}``."""
    return {k: record[k] for k in _PUBLIC}


# -- repository ------------------------------------------------------------------------------


def insert_user(
    conn: Connection, email: str, password_hash: str, full_name: str | None
) -> UserRecord:
    """Insert a user; the unique index on email raises ``IntegrityError`` for a taken one."""
    record: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "email": email,
        "full_name": full_name,
        "password_hash": password_hash,
        "token_version": 0,
        "created_at": datetime.now(UTC),
    }
    conn.execute(users.insert().values(**record))
    del record["password_hash"]
    record["created_at"] = _iso(record["created_at"])
    return record


_LOAD = select(
    users.c.id, users.c.email, users.c.full_name, users.c.created_at, users.c.token_version
)


def load_user(conn: Connection, user_id: str) -> UserRecord | None:
    row = conn.execute(_LOAD.where(users.c.id == user_id)).first()
    if row is None:
        return None
    return {
        "id": row.id,
        "email": row.email,
        "full_name": row.full_name,
        "created_at": _iso(row.created_at),
        "token_version": row.token_version,
    }


def find_login(conn: Connection, email: str) -> tuple[str, str, int] | None:
    """``(id, password_hash, token_version)`` for ``email``, or None."""
    row = conn.execute(
        select(users.c.id, users.c.password_hash, users.c.token_version).where(
            users.c.email == email
        )
    ).first()
    return None if row is None else (row.id, row.password_hash, row.token_version)


def set_password_hash(conn: Connection, user_id: str, password_hash: str) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))


def bump_token_version(conn: Connection, user_id: str) -> None:
    conn.execute(
        update(users).where(users.c.id == user_id).values(token_version=users.c.token_version + 1)
    )


# -- services --------------------------------------------------------------------------------


async def register(svc: Services, email: str, password: str, full_name: str | None) -> UserRecord:
    """Create the account, or 409 ``email_taken``.

    The insert itself decides: a unique-index violation is the answer, so two concurrent
    registrations of one email cannot both pass a check-then-insert. Ids are random UUIDs, so
    the email index is the only unique constraint an insert can break.
    """
    password_hash = await svc.passwords.hash(password)
    try:
        return await svc.db_call(insert_user, email, password_hash, full_name)
    except IntegrityError:
        raise ApiError(
            409, "email_taken", "An account with this email exists; log in instead."
        ) from None


async def authenticate(svc: Services, email: str, password: str) -> tuple[str, int] | None:
    """``(user_id, token_version)`` for the right password, else None, in about the same time.

    An unknown email is verified against the dummy hash, so both failures cost one lookup
    and one argon2id verification.
    """
    found = await svc.db_call(find_login, email)
    ok = await svc.passwords.verify(None if found is None else found[1], password)
    if not ok or found is None:
        return None
    user_id, password_hash, version = found
    if svc.passwords.needs_rehash(password_hash):
        # parameters were raised since this hash was made: upgrade it while we know the password
        new_hash = await svc.passwords.hash(password)
        await svc.db_call(set_password_hash, user_id, new_hash)
    return user_id, version


async def cached_user(svc: Services, user_id: str) -> UserRecord | None:
    """The user record, from the tiered cache when warm (no database call)."""

    async def load() -> UserRecord | None:
        return await svc.db_call(load_user, user_id)

    # the cache notes its tier for Server-Timing itself
    record: UserRecord | None
    record, _tier = await svc.cache.get_or_load("user", user_id, load)
    return record


def revoke_sessions(conn: Connection, user_id: str) -> None:
    """Every access token (the version) and every refresh-token family, in one transaction."""
    bump_token_version(conn, user_id)
    refresh.revoke_user(conn, user_id, datetime.now(UTC))


async def logout(svc: Services, user_id: str) -> None:
    """Revoke every token issued so far, access and refresh, then drop the cached record."""
    await svc.db_call(revoke_sessions, user_id)
    await svc.cache.invalidate("user", user_id)

"""``velro keys create --name NAME | list | revoke ID``: manage service keys.

``create`` prints the key once; only its SHA-256 is stored. ``revoke`` marks the key revoked
in the database and then tells every running app through Redis, which drops it from its
cache at once (see ``velro.service_keys`` for the whole mechanism).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC
from typing import TypeVar

from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError, ProgrammingError

from velro import service_keys
from velro.db import Database
from velro.errors import VelroError
from velro.settings import Settings

__all__ = ["register"]

T = TypeVar("T")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("keys", help="manage service keys")
    keysub = p.add_subparsers(dest="keys_command", required=True)
    create = keysub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.set_defaults(handler=create_key)
    listing = keysub.add_parser("list", help="list keys (never the keys themselves)")
    listing.set_defaults(handler=list_keys)
    revoke = keysub.add_parser("revoke", help="revoke a key, at once in every process")
    revoke.add_argument("id", help="the key's id, as `velro keys list` shows it")
    revoke.set_defaults(handler=revoke_key)


def _in_db(settings: Settings, func: Callable[..., T], *args: object) -> T:
    db = Database(settings.database_url)
    try:
        return db.call(func, *args)
    except (OperationalError, ProgrammingError) as exc:
        raise VelroError(
            f"the database at {db.engine.url.render_as_string(hide_password=True)} has no "
            f"service_keys table or does not answer ({exc.orig}); run `velro db init` first"
        ) from None
    finally:
        db.close()


def create_key(args: argparse.Namespace) -> int:
    name = args.name.strip()
    if not name or len(name) > 200:
        raise VelroError(f"--name is {args.name!r}; give 1 to 200 characters")
    key_id, key = _in_db(Settings.from_env(), service_keys.create_key, name)
    print(f"id:  {key_id}")
    print(f"key: {key}")
    print("Store the key now: it is not shown again (only its SHA-256 is kept).", file=sys.stderr)
    return 0


def list_keys(_: argparse.Namespace) -> int:
    rows = _in_db(Settings.from_env(), service_keys.list_keys)
    print(f"{'id':36}  {'created_at':25}  {'status':7}  name")
    for row in rows:
        status = "revoked" if row["revoked_at"] is not None else "active"
        at = row["created_at"]
        if at.tzinfo is None:  # SQLite gives back naive datetimes; velro writes UTC
            at = at.replace(tzinfo=UTC)
        created = at.isoformat(timespec="seconds")
        print(f"{row['id']:36}  {created:25}  {status:7}  {row['name']}")
    return 0


def revoke_key(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    sha = _in_db(settings, service_keys.revoke_key, args.id)
    if sha is None:
        raise VelroError(f"no service key has id {args.id!r}; see `velro keys list`")
    if not settings.redis_enabled:
        # without Redis no app caches a key, so the database is the whole story
        print(f"revoked {args.id}")
        return 0
    try:
        notified = service_keys.publish_revocation(settings, sha)
    except (RedisError, OSError) as exc:
        print(
            f"velro: revoked {args.id} in the database, but could not tell the running apps "
            f"through Redis ({exc}); an app that still reaches Redis may accept the key for up "
            f"to VELRO_SERVICE_KEY_TTL_S ({settings.service_key_ttl_s:g} s): restart it, or "
            "run this again once Redis answers",
            file=sys.stderr,
        )
        return 1
    print(f"revoked {args.id}; {notified} running process(es) notified")
    return 0

"""The stores a run borrows: a PostgreSQL database of its own and a Redis key prefix of its
own, each given back exactly (the servers are shared with other users of this machine)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

from velro_perf.errors import ConfigError

__all__ = [
    "POSTGRES_ADMIN_URL",
    "REDIS_URL",
    "claim_redis_prefix",
    "create_pg_database",
    "delete_redis_prefix",
    "drop_pg_database",
    "glob_escape",
    "own_redis_prefix",
]

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def create_pg_database(run_id: str) -> tuple[str, str]:
    """``(name, SQLAlchemy URL)`` of a new database named after `run_id`; ConfigError when
    PostgreSQL does not answer at 127.0.0.1:5432."""
    import psycopg  # the PostgreSQL driver is only needed for --database postgres

    name = "velro_run_" + "".join(c if c.isalnum() else "_" for c in run_id)
    name = name.lower()[:63]  # PostgreSQL truncates identifiers at 63 bytes
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise ConfigError(
            f"could not create PostgreSQL database {name!r} at {POSTGRES_ADMIN_URL} ({exc}); "
            "start PostgreSQL on 127.0.0.1:5432 or use --database sqlite"
        ) from exc
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_pg_database(name: str) -> None:
    """Drop database `name`, its connections too; nothing when PostgreSQL is gone."""
    import psycopg

    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn,
    ):
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def claim_redis_prefix(run_id: str) -> str:
    """The run's key prefix on 127.0.0.1:6379 (database 0, at `REDIS_URL`) when Redis answers;
    "" when it does not (the service then runs with its in-process tiers only)."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError):
        return ""
    finally:
        client.close()
    # database 0 is shared with other users of this Redis: a prefix of the run's own keeps
    # its keys apart, and the end of the run deletes exactly those
    return f"velro_perf:{run_id}:"


@contextlib.contextmanager
def own_redis_prefix(redis_url: str, label: str) -> Iterator[str]:
    """A key prefix of the caller's own (``<label>_<random>:``) on a Redis shared with others;
    every key under it is deleted at the end."""
    prefix = f"{label}_{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        delete_redis_prefix(redis_url, prefix)


def delete_redis_prefix(redis_url: str, prefix: str) -> int:
    """Delete every key under `prefix` (taken literally, not as a glob) at `redis_url`; return
    how many there were. A Redis that does not answer has nothing of ours left to delete."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=glob_escape(prefix) + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(client.delete(*batch))
                batch.clear()
        if batch:
            deleted += int(client.delete(*batch))
    except (redis.RedisError, OSError):
        pass
    finally:
        client.close()
    return deleted


def glob_escape(text: str) -> str:
    """`text` as a literal in a Redis MATCH pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)

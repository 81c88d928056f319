"""The system under test: checks on a given target, and the reference service's lifetime.

Load only ever goes to this machine, so a target must be a loopback address. With no target
the runner starts the reference service itself (`velro db init`, `velro seed`, `velro serve`)
on a private database (SQLite in the run folder, or a PostgreSQL database of its own) and a
Redis database number nobody else uses, and gives all of it back when the run ends.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx

from velro_perf.errors import ConfigError, ServiceStartError, TargetUnreachableError, UsageError
from velro_perf.paths import project_root, tool_command
from velro_perf.procs import ManagedProcess, spawn

__all__ = [
    "KEEP_ALIVE_S",
    "SERVICE_NICE",
    "ReferenceService",
    "ServiceOptions",
    "check_port_free",
    "check_reachable",
    "delete_redis_prefix",
    "free_port",
    "glob_escape",
    "is_loopback_url",
    "own_redis_prefix",
    "redact_url",
    "require_loopback",
    "wait_healthy",
]

# uvicorn's keep-alive given to `velro serve`: longer than the users' think time, so Locust's
# connections are reused instead of reopened (recorded in meta.json under generator)
KEEP_ALIVE_S = 75
# The reference service runs this many nice steps below the generator. On one machine they
# contend for the same cores; the instrument must keep its clock and its heartbeats (a worker
# starved of CPU for 3 s is dropped by Locust's master), so when both are runnable the
# generator goes first (about 3:1 under CFS); the service still gets every cycle it leaves.
SERVICE_NICE = 5
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def is_loopback_url(url: str) -> bool:
    """True when `url` is http(s) to 127.0.0.0/8, ::1 or localhost."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return False
    host = parts.hostname
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_loopback(url: str) -> str:
    """The target without a trailing slash, or UsageError when it is not on this machine."""
    if not is_loopback_url(url):
        raise UsageError(
            f"target {url!r} is not a loopback address; load stays on this machine: "
            "give http://127.0.0.1:PORT, http://localhost:PORT or http://[::1]:PORT"
        )
    return url.rstrip("/")


def check_reachable(url: str, timeout_s: float = 5.0) -> None:
    """Raise TargetUnreachableError unless something answers HTTP at `url` (any status)."""
    try:
        with httpx.Client(timeout=timeout_s) as client:
            client.get(url + "/health")
    except httpx.HTTPError as exc:
        raise TargetUnreachableError(
            f"target {url} is unreachable ({type(exc).__name__}: {exc}); "
            "start the service first or check the URL and port"
        ) from exc


def check_port_free(port: int, host: str = "127.0.0.1") -> None:
    """UsageError when `port` cannot be bound on `host` (another process holds it)."""
    if not 0 < port < 65536:
        raise UsageError(f"port {port} is out of range; give a port between 1 and 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as uvicorn binds: connections of an earlier server in TIME_WAIT do not hold the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"port {port} on {host} is already in use ({exc.strerror}); "
                "give another --port or leave it out to pick a free one"
            ) from exc


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS's pick); the suite's one way to find one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _Polled(Protocol):
    def poll(self) -> int | None: ...


def wait_healthy(
    url: str, process: _Polled | None, timeout_s: float, log_path: Path, interval_s: float = 0.25
) -> None:
    """Poll ``GET <url>/health`` until it answers 200. ServiceStartError when `process` exits
    first, TargetUnreachableError when `timeout_s` runs out; both name `log_path`."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise ServiceStartError(
                    f"velro serve exited with code {process.poll()} before it was healthy; "
                    f"see {log_path}"
                )
            try:
                response = client.get(url + "/health")
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(interval_s)  # polling for readiness, not modelling a cost
    raise TargetUnreachableError(
        f"the service at {url} was not healthy after {timeout_s:.0f} s (last: {last}); "
        f"see {log_path}"
    )


def redact_url(url: str) -> str:
    """`url` without its password, for files a person may share."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class ServiceOptions:
    """How to start the reference service for one run."""

    run_dir: Path
    run_id: str
    profile: str = "fixed"
    database: str = "sqlite"  # sqlite | postgres | a SQLAlchemy URL
    use_redis: bool = True
    port: int | None = None
    workers: int = 1
    seed_users: int = 100
    seed_teams: int = 10
    seed_projects: int = 100
    startup_timeout_s: float = 60.0
    access_token_ttl_s: int | None = None  # None: the service's default


@dataclass
class ReferenceService:
    """The reference service of one run; use as a context manager so it is always torn down."""

    options: ServiceOptions
    url: str = ""
    database_url: str = ""
    redis_url: str = ""
    fixtures_path: Path | None = None
    _process: ManagedProcess | None = None
    _pg_database: str | None = None
    redis_prefix: str = ""
    _log: list[str] = field(default_factory=list)

    # -- lifetime -------------------------------------------------------------------------

    def __enter__(self) -> ReferenceService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def prepare(self) -> None:
        """Pick the port, create the database, choose a Redis key prefix; nothing started yet."""
        opts = self.options
        if opts.port is not None:
            check_port_free(opts.port)
        port = opts.port if opts.port is not None else free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.database_url = self._prepare_database()
        self.redis_url = self._claim_redis() if opts.use_redis else ""

    def start(self) -> None:
        """db init, seed with the shape's sizes, serve, and wait for /health."""
        opts = self.options
        env = self.env()
        self._run_cli(["db", "init"], env, "velro db init")
        self.fixtures_path = opts.run_dir / "fixtures.json"
        self._run_cli(
            [
                "seed",
                "--users",
                str(opts.seed_users),
                "--teams",
                str(opts.seed_teams),
                "--projects",
                str(opts.seed_projects),
                "--out",
                str(self.fixtures_path),
            ],
            env,
            "velro seed",
        )
        port = urlsplit(self.url).port
        argv = [
            *tool_command("velro", "velro"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        if opts.workers > 1:
            argv += ["--workers", str(opts.workers)]
        argv += ["--profile", opts.profile, "--keep-alive", str(KEEP_ALIVE_S)]
        if opts.access_token_ttl_s is not None:
            argv += ["--access-token-ttl", str(opts.access_token_ttl_s)]
        self._process = spawn(
            "velro serve", argv, env=env, log_path=self.log_path, nice=SERVICE_NICE
        )
        self.wait_healthy()

    def wait_healthy(self) -> None:
        wait_healthy(self.url, self._process, self.options.startup_timeout_s, self.log_path)

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop the server, then give back the database and the Redis keys it used."""
        if self._process is not None:
            self._process.stop(grace_s=10.0)
            self._process = None
        self._release_redis()
        self._drop_database()

    # -- pieces ---------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.options.run_dir / "service.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["VELRO_DATABASE_URL"] = self.database_url
        env["VELRO_REDIS_URL"] = self.redis_url
        if self.redis_prefix:
            env["VELRO_REDIS_PREFIX"] = self.redis_prefix
        env["VELRO_PROFILE"] = self.options.profile
        # the service imports from src/ even when the project is not installed in the venv
        src = str(project_root() / "src")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
        return env

    def _run_cli(self, args: list[str], env: dict[str, str], what: str) -> None:
        argv = [*tool_command("velro", "velro"), *args]
        with self.log_path.open("a") as log:
            log.write(f"$ {' '.join(argv)}\n")
        proc = spawn(what, argv, env=env, log_path=self.log_path)
        try:
            code = proc.wait()
        finally:
            proc.stop(grace_s=2.0)
        if code != 0:
            raise ServiceStartError(f"`{what}` failed with exit code {code}; see {self.log_path}")

    def _prepare_database(self) -> str:
        choice = self.options.database
        if choice == "sqlite":
            return f"sqlite:///{(self.options.run_dir / 'velro.db').resolve()}"
        if choice in {"postgres", "postgresql"}:
            return self._create_pg_database()
        if "://" in choice:
            return choice
        raise ConfigError(
            f"--database {choice!r} is not understood; give sqlite, postgres or a URL such as "
            "postgresql+psycopg://postgres@127.0.0.1:5432/velro"
        )

    def _create_pg_database(self) -> str:
        import psycopg  # the PostgreSQL driver is only needed for --database postgres

        name = "velro_run_" + "".join(c if c.isalnum() else "_" for c in self.options.run_id)
        name = name.lower()[:63]  # PostgreSQL truncates identifiers at 63 bytes
        try:
            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.Error as exc:
            raise ConfigError(
                f"could not create PostgreSQL database {name!r} at {POSTGRES_ADMIN_URL} ({exc}); "
                "start PostgreSQL on 127.0.0.1:5432 or use --database sqlite"
            ) from exc
        self._pg_database = name
        return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

    def _drop_database(self) -> None:
        if self._pg_database is None:
            return
        import psycopg

        name, self._pg_database = self._pg_database, None
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as conn,
        ):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _claim_redis(self) -> str:
        """The Redis URL when 127.0.0.1:6379 answers, with a key prefix of this run; else ""."""
        import redis

        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=2)
        try:
            client.ping()
        except (redis.RedisError, OSError):
            return ""  # no Redis: the service runs with its in-process tiers only
        finally:
            client.close()
        # database 0 is shared with other users of this Redis: a prefix of the run's own keeps
        # its keys apart, and the end of the run deletes exactly those
        self.redis_prefix = f"velro_perf:{self.options.run_id}:"
        return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"

    def _release_redis(self) -> None:
        if not self.redis_prefix:
            return
        prefix, self.redis_prefix = self.redis_prefix, ""
        delete_redis_prefix(f"redis://{REDIS_HOST}:{REDIS_PORT}/0", prefix)


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

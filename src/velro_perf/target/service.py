"""The reference service of one run: its port, database and Redis prefix, its processes
(`velro db init`, `velro seed`, `velro serve`), and their teardown."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from velro_perf.errors import ConfigError, ServiceStartError
from velro_perf.paths import budgets_file, tool_command
from velro_perf.procs import ManagedProcess, spawn
from velro_perf.target.health import wait_healthy
from velro_perf.target.ports import check_port_free, free_port
from velro_perf.target.stores import (
    REDIS_URL,
    claim_redis_prefix,
    create_pg_database,
    delete_redis_prefix,
    drop_pg_database,
)

__all__ = ["KEEP_ALIVE_S", "SERVICE_NICE", "ReferenceService", "ServiceOptions"]

# uvicorn's keep-alive given to `velro serve`: longer than the users' think time, so Locust's
# connections are reused instead of reopened (recorded in meta.json under generator)
KEEP_ALIVE_S = 75
# The reference service runs this many nice steps below the generator. On one machine they
# contend for the same cores; the instrument must keep its clock and its heartbeats (a worker
# starved of CPU for 3 s is dropped by Locust's master), so when both are runnable the
# generator goes first (about 3:1 under CFS); the service still gets every cycle it leaves.
SERVICE_NICE = 5


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
        if opts.use_redis:
            self.redis_prefix = claim_redis_prefix(opts.run_id)
            self.redis_url = REDIS_URL if self.redis_prefix else ""

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

    @property
    def pid(self) -> int | None:
        """The service's root process (its workers are its children), while it runs."""
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """Stop the server, then give back the database and the Redis keys it used."""
        if self._process is not None:
            self._process.stop(grace_s=10.0)
            self._process = None
        if self.redis_prefix:
            prefix, self.redis_prefix = self.redis_prefix, ""
            delete_redis_prefix(REDIS_URL, prefix)
        if self._pg_database is not None:
            name, self._pg_database = self._pg_database, None
            drop_pg_database(name)

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
        # the service judges its own latency budgets by the file the run is judged by; velro
        # does not import the suite, so the suite tells it where its budgets are
        env.setdefault("VELRO_BUDGETS_FILE", str(budgets_file()))
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
            self._pg_database, url = create_pg_database(self.options.run_id)
            return url
        if "://" in choice:
            return choice
        raise ConfigError(
            f"--database {choice!r} is not understood; give sqlite, postgres or a URL such as "
            "postgresql+psycopg://postgres@127.0.0.1:5432/velro"
        )

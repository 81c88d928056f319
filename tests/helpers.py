"""What several test modules share and is not a fixture: one copy of each.

* loopback resources: ``free_port`` and ``delete_redis_prefix`` (the suite's own, from
  velro_perf/target.py, so tests, benchmarks and runs find ports and clean Redis alike);
* ``shape_toml`` and ``workload_toml``, the load files a test writes;
* ``cli_env``: the environment a CLI subprocess runs in; ``LiveServer``, an app on a socket;
  ``server_process``, a server in a subprocess, and ``velro_serve``, `velro serve` in one;
* the HTTP API's actions and assertions, which the ``api`` fixture of tests/conftest.py
  bundles (as the Flask tutorial's ``AuthActions``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from velro_perf.errors import VelroPerfError
from velro_perf.procs import terminate
from velro_perf.scenarios.shapes import load_shapes
from velro_perf.shapes import shape_toml
from velro_perf.suitedata import shapes_file
from velro_perf.target import delete_redis_prefix, free_port, own_redis_prefix, wait_healthy

if TYPE_CHECKING:
    from velro.settings import Settings

__all__ = [
    "API",
    "BIN",
    "PASSWORD",
    "ROOT",
    "SECURITY_HEADERS",
    "Api",
    "assert_common_headers",
    "assert_error",
    "bearer",
    "cli_env",
    "delete_redis_prefix",
    "free_port",
    "login",
    "own_redis_prefix",
    "register",
    "serve",
    "server_process",
    "shape_toml",
    "start",
    "velro_serve",
    "workload_toml",
]

ROOT = Path(__file__).resolve().parents[1]
# the scripts of the interpreter running the tests (velro, velro-perf, uvicorn, locust)
BIN = Path(sys.executable).parent
API = "/api/v1"
PASSWORD = "correct horse battery"
SECURITY_HEADERS = (
    "strict-transport-security",
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "permissions-policy",
    "cross-origin-opener-policy",
    "cross-origin-embedder-policy",
    "cross-origin-resource-policy",
    "x-permitted-cross-domain-policies",
    "cache-control",
)


def latency_budget_toml(
    budget_id: str, requirement: str, endpoint: str, max_ms: float, *, description: str
) -> str:
    """A budgets file of one p95 latency budget on one endpoint."""
    return (
        f'prd = "test"\n\n[[budget]]\nid = "{budget_id}"\nrequirement = "{requirement}"\n'
        f'description = "{description}"\nkind = "latency"\nendpoints = ["{endpoint}"]\n'
        f"percentile = 95\nmax = {max_ms:.1f}\n"
    )


def workload_toml(weight: Mapping[str, int], fixed_count: Mapping[str, int] | None = None) -> str:
    """A workload.toml's [users] table: a weight per kind of traffic, or a fixed count."""
    lines = [f"{kind} = {{ weight = {n} }}" for kind, n in weight.items()]
    lines += [f"{kind} = {{ fixed_count = {n} }}" for kind, n in (fixed_count or {}).items()]
    return "\n[users]\n" + "\n".join(lines) + "\n"


def short_smoke(directory: Path, hold_s: float = 20.0, warmup_s: float = 5.0) -> Path:
    """A shapes file whose `smoke` is the real smoke shape's users, waits, seed and workload,
    held `hold_s` after a `warmup_s` warm-up instead of 55 s: the same load, judged on fewer
    requests, for the tests that need a whole run of it but not its conclusive verdicts."""
    smoke = load_shapes(shapes_file())["smoke"]
    workload = smoke.workload_file(shapes_file())
    path = directory / "short-smoke.toml"
    path.write_text(
        shape_toml(
            "smoke", warmup_s=warmup_s, wait_s=smoke.wait_s,
            seed=(smoke.seed_users, smoke.seed_teams, smoke.seed_projects),
            duration_s=warmup_s + hold_s, users=smoke.peak_users,
            spawn_rate=smoke.stages[0].spawn_rate,
            workload=None if workload is None else str(workload),
        ),
        encoding="utf-8",
    )  # fmt: skip
    return path


def cli_env(**extra: str) -> dict[str, str]:
    """The test process's environment, with src/ and the project root importable (the
    packages import from there even before they are installed), and `extra` on top."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    env.update(extra)
    return env


def velro_perf_argv() -> list[str]:
    """`velro-perf` as installed beside this Python, else `python -m velro_perf`."""
    script = Path(sys.executable).parent / "velro-perf"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "velro_perf"]


def run_cli(
    *args: str | Path, cwd: Path, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """`velro-perf ARGS...` in a subprocess, as a user runs it; `env` on top of cli_env()."""
    return subprocess.run(
        [*velro_perf_argv(), *map(str, args)],
        cwd=cwd,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def api_check(
    api_file: str | Path, target: str, *extra: str | Path, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`velro-perf api check FILE --target URL EXTRA...`, without a service key in the
    environment (a backend of a test's own takes none)."""
    return run_cli(
        "api", "check", api_file, "--target", target, *extra,
        cwd=cwd, timeout=60, VELRO_PERF_SERVICE_KEY="",
    )  # fmt: skip


@contextmanager
def server_process(
    argv: list[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A server in a subprocess, its output in ``log_path``; terminated at the end (killed
    when it has not exited 10 s later, ``velro_perf.procs.terminate``)."""
    log = log_path.open("w")
    server = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield server
    finally:
        terminate(server)
        log.close()


def serve_backend(
    argv: list[str],
    cwd: Path,
    log: Path,
    *,
    health: str,
    env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """A backend of a test's own under uvicorn (`argv` without host and port) on a free port;
    yields its base URL once `health` answers 200 (30 s at most), stops it after."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with server_process(
        [*argv, "--host", "127.0.0.1", "--port", str(port)], log, env=env, cwd=cwd
    ) as server:
        try:
            wait_healthy(base, server, 30.0, log, interval_s=0.2, path=health)
        except VelroPerfError as error:
            raise AssertionError(f"{error}\n{log.read_text()[-2000:]}") from None
        yield base


@contextmanager
def velro_serve(
    workdir: Path,
    env: Mapping[str, str],
    *,
    interval_s: float,
    not_up: Callable[[str], None],
    options: Sequence[str] = (),
) -> Iterator[str]:
    """`velro serve` on a free loopback port, healthy; yields its base URL. ``options`` are
    more of `velro serve`'s (``--access-token-ttl 120``).

    Its output goes to ``workdir/serve.log``; when it does not come up, ``not_up`` is given
    that log's text and must end the test (``pytest.fail`` or ``pytest.skip``)."""
    port = free_port()
    log_path = workdir / "serve.log"
    argv = [str(BIN / "velro"), "serve", "--host", "127.0.0.1", "--port", str(port), *options]
    base = f"http://127.0.0.1:{port}"
    with server_process(argv, log_path, env=env) as server:
        try:
            wait_healthy(base, server, 30.0, log_path, interval_s=interval_s)
        except VelroPerfError:
            not_up(log_path.read_text())
        yield base


class LiveServer:
    """A real uvicorn server on a loopback port, in a thread of the test process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            server_header=False,
            timeout_keep_alive=75,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def serve(live_server: Callable[..., Any], settings: Settings) -> Any:
    """Create the schema (``velro db init``), then start the app on a real socket."""
    from velro.db import Database

    db = Database(settings.database_url)
    db.create_all()
    db.close()
    return live_server(settings)


def start(live_server: Callable[..., Any], settings: Settings) -> httpx.Client:
    """A client of a fresh app, with ``/api/v1`` as its base."""
    return httpx.Client(base_url=serve(live_server, settings).url + API, timeout=10)


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    """The contract's one error shape, with the request id of the response."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["request_id"] == r.headers["x-request-id"]


def assert_common_headers(r: httpx.Response) -> None:
    for name in SECURITY_HEADERS:
        assert name in r.headers, name
    assert r.headers["x-request-id"]
    assert r.headers["server-timing"].startswith("app;dur=")
    assert "server" not in r.headers
    assert "x-powered-by" not in r.headers


def register(client: httpx.Client, email: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post("/auth/register", json={"email": email, "password": password, **extra})


def login(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/auth/login", json={"email": email, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Api:
    """The HTTP API's actions in a test, as the Flask tutorial's ``AuthActions`` (the ``api``
    fixture): start an app on a real socket, register, log in, bearer headers, and the
    contract's error shape."""

    def __init__(self, live_server: Callable[..., Any]) -> None:
        self._live_server = live_server

    def serve(self, settings: Settings) -> Any:
        """Create the schema, then start the app on a real socket; the server."""
        return serve(self._live_server, settings)

    def start(self, settings: Settings) -> httpx.Client:
        """A client of a fresh app, with ``/api/v1`` as its base."""
        return start(self._live_server, settings)

    register = staticmethod(register)
    login = staticmethod(login)
    bearer = staticmethod(bearer)
    assert_error = staticmethod(assert_error)
    assert_common_headers = staticmethod(assert_common_headers)

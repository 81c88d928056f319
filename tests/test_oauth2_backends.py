"""OAuth2 backends the suite was not written for, described by an API file alone.

django-oauth-toolkit, the most used OAuth2 provider for Python, served as a small Django
project (tests/fixtures/dot_provider) under uvicorn on a free loopback port: its users and
its two clients are made before the run by Django's management commands (`velro_users`,
DOT's own `createapplication`), and the load signs in as them from a users file. And a
FastAPI backend whose bad-token refusal depends on what was sent (401 missing, 403
malformed), as `OAuth2PasswordBearer` answers. `velro-perf` runs as a user runs it.
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BIN, api_check, run_cli, serve_backend, short_smoke
from velro_perf.reports.samples import SampleStore

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
DOT_PROJECT = FIXTURES / "dot_provider"
DOT_FILE = ROOT / "targets" / "django-oauth-toolkit.toml"
BEARER_FILE = FIXTURES / "bearer_backend" / "bearer.toml"
# the smoke shape's seed_users: the users file must hold at least as many
SMOKE_USERS = 60

pytestmark = pytest.mark.slow


def _manage(*args: str, env: dict[str, str]) -> None:
    done = subprocess.run(
        [str(BIN / "python"), "manage.py", *args],
        cwd=DOT_PROJECT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def dot_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The provider on a socket, and the users file of the users made for it."""
    workdir = tmp_path_factory.mktemp("dot")
    # access tokens of 10 s: every session refreshes (and every service asks for a new
    # client-credentials token) a few times within the short smoke's 25 s
    env = {**os.environ, "DOT_DATABASE": str(workdir / "dot.sqlite3"), "DOT_ACCESS_TOKEN_TTL": "10"}
    users = workdir / "users.csv"
    _manage("migrate", "--verbosity", "0", env=env)
    _manage("velro_users", "--count", str(SMOKE_USERS), "--out", str(users), env=env)
    # the two clients of the API file: the users' (password grant, refresh tokens go with
    # it) and the services' (client credentials); plain secrets, because every introspection
    # authenticates its client and a hashed secret would make each one a password hash
    _manage("createapplication", "confidential", "password", "--name", "velro web",
            "--client-id", "velro-web", "--client-secret", "web-secret",
            "--no-hash-client-secret", env=env)  # fmt: skip
    _manage("createapplication", "confidential", "client-credentials", "--name", "velro service",
            "--client-id", "velro-service", "--client-secret", "service-secret",
            "--no-hash-client-secret", env=env)  # fmt: skip
    # two worker processes, as a deployment runs Django's ASGI app: each serves its sync
    # views one at a time, so one would queue every request behind a sign-in's hash
    argv = [str(BIN / "uvicorn"), "dot_provider.asgi:application", "--no-access-log",
            "--workers", "2"]  # fmt: skip
    for base in serve_backend(
        argv, DOT_PROJECT, workdir / "uvicorn.log", health="/health", env=env
    ):
        yield base, users


@pytest.fixture(scope="module")
def bearer_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("bearer")
    argv = [str(BIN / "uvicorn"), "bearer_app:app"]
    yield from serve_backend(
        argv, FIXTURES / "bearer_backend", workdir / "uvicorn.log", health="/docs"
    )


# the backends of these tests take no service key of the environment's
velro_perf = functools.partial(run_cli, VELRO_PERF_SERVICE_KEY="")


def test_api_check_reports_each_oauth2_operation(
    dot_provider: tuple[str, Path], tmp_path: Path
) -> None:
    base, users = dot_provider
    done = api_check(DOT_FILE, base, "--users-file", users, cwd=tmp_path)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    for line in (
        "ok   login (log the owner in): POST /o/token/ -> 200",
        "ok   me (the signed-in caller): POST /o/introspect/ -> 200",
        "ok   me (a bad token (malformed), expecting 200 active=false): POST /o/introspect/ -> 200",
        "ok   me (a bad token (missing), expecting 400 error=invalid_request)",
        "ok   refresh (refresh the owner's token): POST /o/token/ -> 200",
        "ok   refresh (the consumed refresh token again): POST /o/token/ -> 400",
        "ok   refresh (the family's newest token, revoked by the reuse): POST /o/token/ -> 400",
        "ok   client_token (a service's token (client credentials)): POST /o/token/ -> 200",
        "ok   service_user (look a user up): GET /api/users/",
        "ok   logout (log the owner out): POST /o/revoke_token/ -> 200",
        "skip register (sign up the owner): the users file's users exist already",
    ):
        assert line in out, out


GRANT_NAMED = "got 400 unsupported_grant_type; the provider serves no such grant"
SECRET_NAMED = "got 401 invalid_client; the provider does not accept the client"


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('grant_type = "password"', 'grant_type = "passwd"', GRANT_NAMED),
        ('secret = "web-secret"', 'secret = "not-the-secret"', SECRET_NAMED),
        (', refresh_token = "{refresh_token}" }', " }", "refresh sends no {refresh_token}"),
    ],
)
def test_api_check_names_what_is_wrong_in_a_broken_copy(
    dot_provider: tuple[str, Path], tmp_path: Path, old: str, new: str, named: str
) -> None:
    base, users = dot_provider
    text = DOT_FILE.read_text()
    assert old in text
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace(old, new, 1))
    done = api_check(broken, base, "--users-file", users, cwd=tmp_path)
    assert done.returncode in (1, 2), done.stdout + done.stderr
    assert named in done.stdout + done.stderr


def test_a_backend_answering_401_missing_and_403_malformed_passes_api_check(
    bearer_app: str, tmp_path: Path
) -> None:
    done = api_check(BEARER_FILE, bearer_app, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   me (a bad token (missing), expecting 401)" in done.stdout
    assert "ok   me (a bad token (malformed), expecting 403)" in done.stdout
    # the same backend, described with one status, is refused where it answers the other
    one = tmp_path / "one.toml"
    one.write_text(
        BEARER_FILE.read_text().replace(
            "bad_token = { missing = 401, status = 403 }", "bad_token = 401"
        )
    )
    done = api_check(one, bearer_app, cwd=tmp_path)
    assert done.returncode == 1
    assert "expected 401, got 403 Could not validate credentials" in done.stdout


def test_django_oauth_toolkit_gets_a_judged_smoke_report_from_its_files_alone(
    dot_provider: tuple[str, Path], tmp_path: Path
) -> None:
    base, users = dot_provider
    out = tmp_path / "runs"
    done = velro_perf(
        "run", "--shape", "smoke", "--shapes", short_smoke(tmp_path), "--target", base,
        "--api", DOT_FILE, "--users-file", users, "--out", out, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode in (0, 1), output[-3000:]
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    import json

    summary = json.loads((run_dir / "summary.json").read_text())
    verdicts = {b["id"]: b for b in summary["budgets"]}
    for budget in ("authentication.p95", "login.p95", "refresh.p95"):
        assert verdicts[budget]["verdict"] in ("pass", "fail", "inconclusive"), verdicts[budget]
        assert verdicts[budget]["samples"] > 0
    assert "POST /o/introspect/" in verdicts["authentication.p95"]["note"]
    assert "POST /o/token/ [password]" in verdicts["login.p95"]["note"]
    assert "POST /o/token/ [refresh_token]" in verdicts["refresh.p95"]["note"]
    assert verdicts["refresh.p95"]["outside_prd"] is True
    assert verdicts["registration.p95"]["verdict"] == "not_applicable"
    assert "has no sign-up" in verdicts["registration.p95"]["note"]
    endpoints = {e["endpoint"]: e for e in summary["endpoints"]}
    # the services signed in by the client-credentials grant, then read users with its token
    assert endpoints["GET /api/users/{id}"]["failures"] == 0
    rows = SampleStore(run_dir).frame(("endpoint", "expected")).to_dict("records")
    grants = [row for row in rows if row["endpoint"] == "POST /o/token/ [client_credentials]"]
    assert grants
    assert all(row["expected"] == 1 for row in grants)
    # the abuse user's replayed refresh tokens were refused as the file says; nothing else
    # came unexpected either
    assert endpoints["POST /o/token/ [refresh_token] [replayed refresh]"]["requests"] > 0
    assert verdicts["errors.unexpected"]["measured"] == 0.0
    assert all(e["failures"] == 0 for e in endpoints.values()), endpoints

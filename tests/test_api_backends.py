"""Backends the suite was not written for, load-tested through an API file alone.

Each is served by uvicorn on a free loopback port in a subprocess: fastapi-users' own
documented example app (SQLite), and a small notes backend with its own paths, an OAuth2
form login and owner-only notes denied with 403. `velro-perf api check` and `velro-perf run`
run as a user runs them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import BIN, api_check, run_cli, serve_backend, short_smoke, workload_toml

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
NOTES_FILE = FIXTURES / "notes_backend" / "notes.toml"
FASTAPI_USERS_FILE = ROOT / "targets" / "fastapi-users.toml"

# a short shape for the notes backend: enough requests to judge, seconds not minutes
SHORT = """
[shapes.short]
workload = "workload.toml"
warmup_s = 2
wait_s = [0.05, 0.2]
seed_users = 6
seed_teams = 1  # teams are made only where the backend has them (notes has none)
seed_projects = 12
stages = [ { duration_s = 10, users = 8, spawn_rate = 8 } ]
"""

# every kind of traffic the notes backend has, in an 8-user run
WORKLOAD = workload_toml(
    {"authentication": 1, "authorization": 1}, {"login": 1, "registration": 1, "abuse": 1}
)

pytestmark = pytest.mark.slow


def _serve(app: str, cwd: Path, log: Path) -> Iterator[str]:
    argv = [str(BIN / "uvicorn"), app]
    yield from serve_backend(argv, cwd, log, health="/openapi.json")


@pytest.fixture(scope="module")
def fastapi_users_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The documented example, copied to a folder of its own (it writes ./test.db)."""
    workdir = tmp_path_factory.mktemp("fastapi-users")
    shutil.copytree(FIXTURES / "fastapi_users_example" / "app", workdir / "app")
    yield from _serve("app.app:app", workdir, workdir / "uvicorn.log")


@pytest.fixture(scope="module")
def notes_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("notes")
    yield from _serve("notes_app:app", FIXTURES / "notes_backend", workdir / "uvicorn.log")


# the backends of these tests take no service key of the environment's
velro_perf = functools.partial(run_cli, VELRO_PERF_SERVICE_KEY="")


def _judged_run(
    out: Path, *args: str | Path, cwd: Path, timeout: float
) -> tuple[dict[str, object], dict[str, dict[str, object]]]:
    """`velro-perf run ARGS --out OUT`, which must end judged (exit 0 or 1): the run's
    summary and its verdicts by budget id."""
    done = velro_perf("run", *args, "--out", out, cwd=cwd, timeout=timeout)
    output = done.stdout + done.stderr
    assert out.is_dir(), output[-3000:]
    summary = _summary(out)
    verdicts = _verdicts(summary)
    assert done.returncode in (0, 1), output[-3000:]
    return summary, verdicts


def _summary(out: Path) -> dict[str, object]:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    summary: dict[str, object] = json.loads((run_dir / "summary.json").read_text())
    return summary


def _verdicts(summary: dict[str, object]) -> dict[str, dict[str, object]]:
    budgets = summary["budgets"]
    assert isinstance(budgets, list)
    return {str(b["id"]): b for b in budgets}


def test_api_check_passes_the_notes_file_on_the_notes_backend(
    notes_app: str, tmp_path: Path
) -> None:
    done = api_check(NOTES_FILE, notes_app, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "project_read (read as another user): GET /v2/notes/" in done.stdout
    assert "-> 403" in done.stdout
    assert "the rate limit within 5 wrong passwords" in done.stdout


def test_api_check_names_a_wrong_path_token_field_and_denial_status(
    notes_app: str, tmp_path: Path
) -> None:
    text = NOTES_FILE.read_text()
    broken = tmp_path / "broken.toml"
    for good, bad in (
        ('path = "/whoami"', 'path = "/who-am-i"'),
        ('token = "access_token"', 'token = "token"'),
        ("denied = 403", "denied = 404"),
    ):
        assert good in text
        text = text.replace(good, bad)
    broken.write_text(text)
    done = api_check(broken, notes_app, cwd=tmp_path)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    # the wrong path: the request sent and the 404 that came
    assert "sent     GET /v2/who-am-i" in out
    assert "expected 401, got 404" in out
    # the wrong token field: the field named and the ones the answer has
    assert (
        "login answer lacks ['token'] (it has ['access_token', 'expires_in', 'token_type'])" in out
    )
    # the wrong denial status, once login works: shown by a copy with only that fault
    only_denial = tmp_path / "denial.toml"
    only_denial.write_text(NOTES_FILE.read_text().replace("denied = 403", "denied = 404"))
    done = api_check(only_denial, notes_app, cwd=tmp_path)
    assert done.returncode == 1
    assert "FAIL project_read (read as another user)" in done.stdout
    assert "expected 404, got 403" in done.stdout


def test_the_notes_backend_is_load_tested_through_its_api_file_alone(
    notes_app: str, tmp_path: Path
) -> None:
    shapes = tmp_path / "shapes.toml"
    shapes.write_text(SHORT)
    (tmp_path / "workload.toml").write_text(WORKLOAD)
    out = tmp_path / "runs"
    summary, verdicts = _judged_run(
        out, "--shape", "short", "--shapes", shapes, "--target", notes_app, "--api", NOTES_FILE,
        cwd=tmp_path, timeout=180,
    )  # fmt: skip
    # owner-only notes are read as their owner and as others (403): authorization is judged
    for budget in ("authentication.p95", "authorization.p95", "login.p95", "registration.p95"):
        assert verdicts[budget]["verdict"] in ("pass", "fail", "inconclusive"), verdicts[budget]
    assert "GET /v2/notes/{id}" in str(verdicts["authorization.p95"]["note"])
    endpoints = {e["endpoint"]: e for e in summary["endpoints"]}  # type: ignore[attr-defined]
    assert endpoints["GET /v2/notes/{id}"]["failures"] == 0
    assert "POST /v2/oauth/token [wrong password]" in endpoints
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    table = (run_dir / "summary.md").read_text()
    assert table.startswith("### velro-perf: ")
    assert "API `notes` (`" in table
    assert "| authorization.p95 | < 75 ms |" in table
    # the report tells the story and the verdict first, the raw configuration last
    html = (run_dir / "report.html").read_text()
    assert html.index('id="verdict"') < html.index('id="prd"') < html.index('id="metadata"')
    assert summary["api"] == {
        "name": "notes",
        "file": str(NOTES_FILE),
        "sha256": hashlib.sha256(NOTES_FILE.read_bytes()).hexdigest(),
    }


def test_fastapi_users_example_gets_a_judged_smoke_report(
    fastapi_users_app: str, tmp_path: Path
) -> None:
    check = api_check(FASTAPI_USERS_FILE, fastapi_users_app, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    out = tmp_path / "runs"
    summary, verdicts = _judged_run(
        out, "--shape", "smoke", "--shapes", short_smoke(tmp_path), "--target",
        fastapi_users_app, "--api", FASTAPI_USERS_FILE, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert summary["verdict"] in ("pass", "fail", "inconclusive")
    for budget in ("authentication.p95", "authentication.p99", "login.p95", "registration.p95"):
        assert verdicts[budget]["verdict"] in ("pass", "fail", "inconclusive"), verdicts[budget]
        assert int(verdicts[budget]["samples"]) > 0  # type: ignore[call-overload]
    assert "GET /users/me" in str(verdicts["authentication.p95"]["note"])
    assert "POST /auth/jwt/login" in str(verdicts["login.p95"]["note"])
    for budget in ("authorization.p95", "authorization.p99"):
        assert verdicts[budget]["verdict"] == "not_applicable"
        assert "no resources of its own" in str(verdicts[budget]["note"])
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    assert "authorization users off" in (run_dir / "locust.log").read_text()
    assert (
        summary["api"]["sha256"]
        == hashlib.sha256(  # type: ignore[index]
            FASTAPI_USERS_FILE.read_bytes()
        ).hexdigest()
    )

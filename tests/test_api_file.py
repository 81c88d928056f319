"""API files: a malformed one is refused naming the key, the value and the fix; a good one
describes operations the scenarios drive; budgets of operations a backend lacks are not
applicable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scenarios.apifile import load_api, parse_api
from scenarios.checks import PROMISES
from scenarios.errors import ScenarioConfigError

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "targets" / "contract.toml"
FASTAPI_USERS = ROOT / "targets" / "fastapi-users.toml"
NOTES = ROOT / "tests" / "fixtures" / "notes_backend" / "notes.toml"

MINIMAL = {
    "operations": {
        "login": {
            "method": "POST",
            "path": "/login",
            "success": 200,
            "token": "access_token",
            "fields": {"username": "{email}", "password": "{password}"},
        }
    }
}


def test_the_contract_file_describes_every_operation_and_promises_every_check() -> None:
    api = load_api(CONTRACT)
    assert api.promises == frozenset(PROMISES)
    assert all(api.category_off(c) is None for c in ("authentication", "authorization", "abuse"))
    assert api.op("me").endpoint == "GET /api/v1/auth/me"
    assert api.op("project_read").endpoint == "GET /api/v1/projects/{id}"
    assert api.op("authz_check").endpoint == "GET /api/v1/authz/check"


def test_the_fastapi_users_file_logs_in_with_an_oauth2_form_and_has_no_authorization() -> None:
    api = load_api(FASTAPI_USERS)
    login = api.op("login").prepare({"email": "a@example.com", "password": "pw 1"})
    assert (login.method, login.path) == ("POST", "/auth/jwt/login")
    assert login.data == "username=a%40example.com&password=pw+1"
    assert login.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert api.op("me").prepare({}, token="t").headers == {"Authorization": "Bearer t"}
    off = api.category_off("authorization")
    assert off is not None
    assert "no resources" in off
    assert api.category_off("authentication") is None
    assert api.promises == frozenset()


def test_a_path_placeholder_is_quoted_and_named_as_id() -> None:
    api = load_api(NOTES)
    read = api.op("project_read")
    assert read.prepare({"project_id": "a/b"}, token="t").path == "/v2/notes/a%2Fb"
    assert read.prepare({"project_id": "x"}, token="t").headers == {"Authorization": "Token t"}
    assert read.endpoint == "GET /v2/notes/{id}"


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        (("success", "200"), ["operations.login.success", "'200'", "HTTP status number"]),
        (("method", "FETCH"), ["operations.login.method", "'FETCH'", "GET, POST"]),
        (("path", "login"), ["operations.login.path", "'login'", "starting with '/'"]),
        (("body", "xml"), ["operations.login.body", "'xml'", "json, form"]),
        (("fields", {"username": "{mail}"}), ["fields.username", "{mail}", "{email}"]),
        (("token", None), ["operations.login", "no token", 'token = "access_token"']),
        (("sucess", 200), ["operations.login", "'sucess'", "use only"]),
        (("wrong_password", {"code": 401}), ["wrong_password", "'code'", "status"]),
    ],
)
def test_a_malformed_file_names_the_key_the_value_and_the_fix(
    change: tuple[str, object], needles: list[str]
) -> None:
    key, value = change
    login = dict(MINIMAL["operations"]["login"])
    if value is None:
        login.pop(key)
    else:
        login[key] = value
    with pytest.raises(ScenarioConfigError) as caught:
        parse_api({"operations": {"login": login}}, source="mine.toml")
    message = str(caught.value)
    assert message.startswith("mine.toml")
    for needle in needles:
        assert needle in message, message


def test_an_unknown_operation_or_promise_is_named_with_the_known_ones() -> None:
    with pytest.raises(ScenarioConfigError, match=r"'signin', not an operation.*login"):
        parse_api({"operations": {**MINIMAL["operations"], "signin": {}}}, source="m.toml")
    with pytest.raises(ScenarioConfigError, match=r"api.promises is \['headers'\]"):
        parse_api({"api": {"promises": ["headers"]}, **MINIMAL}, source="m.toml")
    with pytest.raises(ScenarioConfigError, match=r"no \[operations.login\]"):
        parse_api({"operations": {}}, source="m.toml")


def test_velro_perf_refuses_a_malformed_api_file_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[operations.login]\nmethod = "POST"\npath = "/l"\nsuccess = "ok"\n')
    for argv in (
        ["api", "check", str(bad), "--target", "http://127.0.0.1:9"],
        ["run", "--shape", "smoke", "--target", "http://127.0.0.1:9", "--api", str(bad)],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "velro_perf", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert "operations.login.success is 'ok'" in done.stderr, done.stderr

"""API files: a malformed one is refused naming the key, the value and the fix; a good one
describes operations the scenarios drive; budgets of operations a backend lacks are not
applicable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from velro_perf.scenarios.apifile import load_api, parse_api
from velro_perf.scenarios.checks import PROMISES
from velro_perf.scenarios.errors import ScenarioConfigError

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


DOT = ROOT / "targets" / "django-oauth-toolkit.toml"
BEARER = ROOT / "tests" / "fixtures" / "bearer_backend" / "bearer.toml"


def _with_me(bad_token: object) -> dict[str, object]:
    me = {"method": "GET", "path": "/me", "success": 200, "bad_token": bad_token}
    return {"operations": {**MINIMAL["operations"], "me": me}}


def test_a_failure_may_be_several_statuses_or_one_per_kind_of_token_sent() -> None:
    several = parse_api(_with_me([401, 403]), source="m.toml").op("me").outcome("bad_token")
    assert several is not None
    assert [e.status for e in several.expects("malformed")] == [401, 403]
    told_apart = load_api(BEARER).op("me").outcome("bad_token")
    assert told_apart is not None
    assert [e.status for e in told_apart.expects("missing")] == [401]
    assert [e.status for e in told_apart.expects("malformed")] == [403]
    assert [e.status for e in told_apart.expects("alg_none")] == [403]
    with pytest.raises(ScenarioConfigError, match=r"no answer to tampered, alg_none tokens"):
        parse_api(_with_me({"missing": 401, "malformed": 403}), source="m.toml")
    with pytest.raises(ScenarioConfigError, match=r"a list of statuses \(\[401, 403\]\)"):
        parse_api(_with_me("401"), source="m.toml")


def test_the_oauth2_file_authenticates_its_clients_and_introspects_the_token() -> None:
    api = load_api(DOT)
    assert api.refreshes
    assert api.service_by_grant
    assert set(api.abuse_tasks()) == {"bad_token", "refresh_replay"}
    login = api.op("login").prepare({"email": "a@example.com", "password": "pw"})
    # RFC 6749 section 2.3.1: HTTP Basic of the form-encoded id and secret
    assert login.headers["Authorization"] == "Basic dmVscm8td2ViOndlYi1zZWNyZXQ="
    assert "password=***" in login.describe()
    assert "=pw" not in login.describe()
    grant = api.op("client_token").prepare({})
    assert (
        grant.data
        == "grant_type=client_credentials&client_id=velro-service&client_secret=service-secret"
    )
    assert "service-secret" not in grant.describe()
    me = api.op("me")
    assert me.prepare({}, token="t0k").data == "token=t0k"
    assert "Authorization" in me.prepare({}, token="t0k").headers  # the client's, not the token
    assert me.prepare({}).data == ""  # a missing token is sent missing
    introspected = me.success()[0]
    assert introspected.body is not None
    assert introspected.body({"active": True, "username": "u", "exp": 1}) is None
    assert introspected.body({"active": False, "username": "u", "exp": 1}) == (
        "me answer has active=False, expected 'true'"
    )
    assert api.category_off("registration") == api.lacks["register"]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            (', refresh_token = "{refresh_token}" }', " }"),
            "operations.refresh sends no {refresh_token}",
        ),
        (("[client]", "[unused]"), "unknown key 'unused'"),
        (('auth = "basic"', 'auth = "digest"'), "client.auth is 'digest'; give basic"),
        (('auth = "client_token"', 'auth = "client_tokens"'), "auth is 'client_tokens'"),
    ],
)
def test_a_malformed_oauth2_file_names_the_fix(change: tuple[str, str], needle: str) -> None:
    import tomllib

    old, new = change
    text = DOT.read_text()
    assert old in text
    with pytest.raises(ScenarioConfigError) as caught:
        parse_api(tomllib.loads(text.replace(old, new, 1)), source="dot.toml")
    assert needle in str(caught.value), caught.value


def test_client_auth_without_a_client_table_is_refused() -> None:
    login = {**MINIMAL["operations"]["login"], "auth": "client"}
    with pytest.raises(ScenarioConfigError, match=r"has no \[client\]"):
        parse_api({"operations": {"login": login}}, source="m.toml")


def test_the_oauth2_example_of_the_docs_is_the_tested_file() -> None:
    import re
    import tomllib

    docs = (ROOT / "docs" / "api-file.md").read_text()
    section = docs[docs.index("## OAuth2") : docs.index("## Users from a file")]
    (example,) = re.findall(r"```toml\n(.*?)```", section, re.S)
    described, tested = parse_api(tomllib.loads(example), source="docs"), load_api(DOT)
    assert described.operations.keys() == tested.operations.keys()
    for key, op in tested.operations.items():
        assert described.op(key).prepare(
            {"email": "e", "password": "p", "user_id": "1", "refresh_token": "r"}, token="t"
        ) == op.prepare(
            {"email": "e", "password": "p", "user_id": "1", "refresh_token": "r"}, token="t"
        )

"""The authentication section of the contract, over a real socket: register, login, me, logout."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest

from tests.helpers import (
    API,
    PASSWORD,
    assert_common_headers,
    assert_error,
    bearer,
    login,
    register,
    start,
)
from velro.db import Database
from velro.settings import Settings


@pytest.fixture
def client(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> Iterator[httpx.Client]:
    with start(live_server, make_settings()) as c:
        yield c


# -- the happy path, on both databases -------------------------------------------------------


def test_register_login_me_logout_follow_the_contract(
    any_db_settings: Settings, live_server: Callable[..., Any]
) -> None:
    with start(live_server, any_db_settings) as client:
        r = register(client, "  Ada@Example.COM ", full_name="Ada Lovelace")
        assert r.status_code == 201, r.text
        user = r.json()
        assert set(user) == {"id", "email", "full_name", "created_at"}
        assert user["email"] == "ada@example.com"
        assert user["full_name"] == "Ada Lovelace"
        assert uuid.UUID(user["id"]).version == 4
        assert user["created_at"].endswith("+00:00")
        assert "hash;dur=" in r.headers["server-timing"]
        assert "db;dur=" in r.headers["server-timing"]

        taken = register(client, "ADA@example.com", "another password")
        assert_error(taken, 409, "email_taken")

        r = login(client, "ada@EXAMPLE.com ")
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
            "refresh_expires_in",
        }
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == any_db_settings.token_ttl_s
        assert body["refresh_expires_in"] == any_db_settings.refresh_token_ttl_s
        assert r.headers["cache-control"] == "no-store"
        token = body["access_token"]

        me = client.get("/auth/me", headers=bearer(token))
        assert me.status_code == 200
        assert me.json() == user
        assert_common_headers(me)
        assert "cache;desc=" in me.headers["server-timing"]

        out = client.post("/auth/logout", headers=bearer(token))
        assert out.status_code == 204
        assert out.content == b""
        assert out.headers["clear-site-data"] == '"cache", "cookies", "storage"'
        assert_common_headers(out)

        assert_error(client.get("/auth/me", headers=bearer(token)), 401, "invalid_token")
        fresh = login(client, "ada@example.com").json()["access_token"]
        assert client.get("/auth/me", headers=bearer(fresh)).status_code == 200


def test_full_name_is_optional(client: httpx.Client) -> None:
    r = register(client, "nobody@example.com")
    assert r.status_code == 201
    assert r.json()["full_name"] is None


def test_unknown_fields_are_ignored(client: httpx.Client) -> None:
    r = register(client, "extra@example.com", role="admin", is_staff=True)
    assert r.status_code == 201
    assert "role" not in r.json()


def test_logout_revokes_every_earlier_token_of_that_user_only(client: httpx.Client) -> None:
    register(client, "many@example.com")
    register(client, "other@example.com")
    tokens = [login(client, "many@example.com").json()["access_token"] for _ in range(3)]
    other = login(client, "other@example.com").json()["access_token"]
    for token in tokens:
        assert client.get("/auth/me", headers=bearer(token)).status_code == 200
    assert client.post("/auth/logout", headers=bearer(tokens[0])).status_code == 204
    for token in tokens:
        r = client.get("/auth/me", headers=bearer(token))
        assert_error(r, 401, "invalid_token")
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert_error(client.post("/auth/logout", headers=bearer(tokens[1])), 401, "invalid_token")
    assert client.get("/auth/me", headers=bearer(other)).status_code == 200


# -- every way a token can be wrong ----------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(settings: Settings, user_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": user_id,
        "iat": now,
        "exp": now + 600,
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "jti": uuid.uuid4().hex,
        "ver": 0,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _bad_tokens(settings: Settings, user_id: str, good: str) -> dict[str, str]:
    secret = settings.jwt_secret

    def sign(**changes: Any) -> str:
        return jwt.encode(_claims(settings, user_id, **changes), secret, algorithm="HS256")

    head, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(uuid.uuid4())
    return {
        "expired": sign(iat=int(time.time()) - 1000, exp=int(time.time()) - 10),
        "tampered payload": f"{head}.{_b64(claims)}.{signature}",
        "tampered signature": f"{head}.{payload}.{signature[:-4]}AAAA",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "alg none, no dot": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}",
        "HS512 with the same secret": jwt.encode(
            _claims(settings, user_id), secret + "-longer-for-hs512" * 2, algorithm="HS512"
        ),
        "wrong secret": jwt.encode(_claims(settings, user_id), "y" * 40, algorithm="HS256"),
        "wrong audience": sign(aud="someone-else"),
        "audience list": sign(aud=[settings.jwt_audience, "x"]),
        "wrong issuer": sign(iss="evil"),
        "no jti": sign(jti=None),
        "no ver": sign(ver=None),
        "no exp": sign(exp=None),
        "ver not a number": sign(ver="0"),
        "future version": sign(ver=7),
        "unknown user": jwt.encode(_claims(settings, str(uuid.uuid4())), secret, algorithm="HS256"),
        "not a jwt": "not-a-jwt",
        "garbage segments": "a.b.c",
    }


def test_every_bad_token_is_401_invalid_token_with_a_challenge(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> None:
    settings = make_settings()
    with start(live_server, settings) as client:
        user_id = register(client, "tok@example.com").json()["id"]
        good = login(client, "tok@example.com").json()["access_token"]
        assert client.get("/auth/me", headers=bearer(good)).status_code == 200
        for case, token in _bad_tokens(settings, user_id, good).items():
            r = client.get("/auth/me", headers=bearer(token))
            assert r.status_code == 401, case
            assert_error(r, 401, "invalid_token")
            assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"', case
            assert_common_headers(r)
        # the good token still works: nothing above changed the account
        assert client.get("/auth/me", headers=bearer(good)).status_code == 200


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer a b", "Basic dXNlcjpwYXNz", "Token abc", "bearer"],
)
def test_a_missing_or_malformed_authorization_header_is_401(
    client: httpx.Client, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    me = client.get("/auth/me", headers=headers)
    out = client.post("/auth/logout", headers=headers)
    for r in (me, out):
        assert_error(r, 401, "invalid_token")
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_the_scheme_is_case_insensitive(client: httpx.Client) -> None:
    register(client, "case@example.com")
    token = login(client, "case@example.com").json()["access_token"]
    r = client.get("/auth/me", headers={"Authorization": f"bEaReR {token}"})
    assert r.status_code == 200


# -- no account enumeration ------------------------------------------------------------------


def test_unknown_email_and_wrong_password_answer_the_same(client: httpx.Client) -> None:
    register(client, "known@example.com")
    unknown = login(client, "unknown@example.com")
    wrong = login(client, "known@example.com", "wrong password")
    for r in (unknown, wrong):
        assert_error(r, 401, "invalid_credentials")
        # both paths verify one argon2id hash (the dummy one for the unknown email)
        assert "hash;dur=" in r.headers["server-timing"]
    a, b = unknown.json()["error"], wrong.json()["error"]
    a.pop("request_id")
    b.pop("request_id")
    assert a == b
    assert set(unknown.headers) == set(wrong.headers)


# -- bad input is a 4xx in the error shape, never a 500 --------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": 12345, "password": PASSWORD}, 422, "invalid_request"),
        ({"email": "a@example.com", "password": {"x": 1}}, 422, "invalid_request"),
        ({"email": ["a@example.com"], "password": PASSWORD}, 422, "invalid_request"),
        ({"email": "a@example.com", "password": None}, 422, "invalid_request"),
        ({"email": "a@example.com", "password": 12345678}, 422, "invalid_request"),
        ({"email": "a@example.com", "password": True}, 422, "invalid_request"),
        ({"email": "a@example.com", "password": PASSWORD, "full_name": 5}, 422, "invalid_request"),
        (
            {"email": "a@example.com", "password": PASSWORD, "full_name": "x" * 201},
            422,
            "invalid_request",
        ),
        ({"email": "a@example.com"}, 422, "invalid_request"),
        ({"password": PASSWORD}, 422, "invalid_request"),
        ({"email": "a@example.com", "password": "short77"}, 422, "invalid_request"),
        ({"email": "a@example.com", "password": "x" * 129}, 422, "invalid_request"),
        ({"email": "x" * 243 + "@example.com", "password": PASSWORD}, 422, "invalid_request"),
        ({"email": "not-an-email", "password": PASSWORD}, 422, "invalid_request"),
        ({"email": "a@b", "password": PASSWORD}, 422, "invalid_request"),
        ({"email": "a b@example.com", "password": PASSWORD}, 422, "invalid_request"),
        ({"email": "a@@example.com", "password": PASSWORD}, 422, "invalid_request"),
        ({"email": "", "password": PASSWORD}, 422, "invalid_request"),
        ([1, 2, 3], 422, "invalid_request"),
        ("just a string", 422, "invalid_request"),
        (None, 422, "invalid_request"),
    ],
)
def test_register_refuses_bad_bodies_in_the_error_shape(
    client: httpx.Client, body: Any, status: int, code: str
) -> None:
    r = client.post("/auth/register", json=body)
    assert_error(r, status, code)
    assert_common_headers(r)


def test_the_password_and_email_bounds_are_inclusive(client: httpx.Client) -> None:
    assert register(client, "eight@example.com", "x" * 8).status_code == 201
    assert register(client, "long@example.com", "y" * 128).status_code == 201
    email = "e" * 64 + "@" + "d" * 185 + ".com"
    assert len(email) == 254
    assert register(client, email).status_code == 201
    assert login(client, email).status_code == 200


@pytest.mark.parametrize("path", ["/auth/register", "/auth/login"])
@pytest.mark.parametrize(
    ("headers", "content", "status", "code"),
    [
        (
            {"content-type": "application/json"},
            b'{"email": "a@example.com",',
            400,
            "malformed_json",
        ),
        ({"content-type": "application/json"}, b"\xff\xfe", 400, "malformed_json"),
        (
            {"content-type": "text/plain"},
            b'{"email": "a@example.com"}',
            415,
            "unsupported_media_type",
        ),
        (
            {"content-type": "application/x-www-form-urlencoded"},
            b"email=a&password=b",
            415,
            "unsupported_media_type",
        ),
        (
            {"content-type": "application/json"},
            b'{"email": "' + b"a" * 70_000 + b'"}',
            413,
            "payload_too_large",
        ),
        ({}, b"", 422, "invalid_request"),
    ],
)
def test_malformed_bodies_are_4xx_with_the_shape_and_headers(
    client: httpx.Client,
    path: str,
    headers: dict[str, str],
    content: bytes,
    status: int,
    code: str,
) -> None:
    r = client.post(path, headers=headers, content=content)
    assert_error(r, status, code)
    assert_common_headers(r)


@pytest.mark.parametrize(
    "body",
    [
        {"email": 1, "password": "x"},
        {"email": "a@example.com", "password": {"nested": True}},
        {"email": None, "password": None},
        {},
        [],
    ],
)
def test_login_refuses_wrong_types_with_422(client: httpx.Client, body: Any) -> None:
    assert_error(client.post("/auth/login", json=body), 422, "invalid_request")


def test_login_with_odd_but_well_typed_input_is_a_plain_401(client: httpx.Client) -> None:
    for email, password in [("", ""), ("x" * 5000, "p"), ("not-an-email", "y" * 1000)]:
        assert_error(login(client, email, password), 401, "invalid_credentials")


def test_a_client_request_id_is_echoed_in_errors(client: httpx.Client) -> None:
    r = client.get("/auth/me", headers={"X-Request-ID": "trace-42"})
    assert r.headers["x-request-id"] == "trace-42"
    assert r.json()["error"]["request_id"] == "trace-42"


def test_concurrent_registrations_of_one_email_make_one_account(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> None:
    import concurrent.futures

    with start(live_server, make_settings()) as client:
        url = str(client.base_url).rstrip("/") + "/auth/register"

        def attempt(i: int) -> int:
            body = {"email": "race@example.com", "password": f"password-{i}"}
            return httpx.post(url, json=body, timeout=10).status_code

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = sorted(pool.map(attempt, range(8)))
    assert statuses == [201] + [409] * 7


# -- hashing ---------------------------------------------------------------------------------


def test_passwords_are_argon2id_at_the_owasp_minimum_by_default(
    tmp_path: Any, live_server: Callable[..., Any]
) -> None:
    from sqlalchemy import select

    from velro.db.schema import users

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'owasp.db'}",
        redis_url="",
        jwt_secret="test-secret-" + "x" * 32,
    )
    with start(live_server, settings) as client:
        assert register(client, "owasp@example.com").status_code == 201
        assert login(client, "owasp@example.com").status_code == 200
    stored = Database(settings.database_url).call(
        lambda conn: conn.execute(select(users.c.password_hash)).scalar_one()
    )
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in stored


def test_a_hash_with_old_parameters_is_upgraded_at_the_next_login(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> None:
    from sqlalchemy import select

    from velro.db.schema import users

    settings = make_settings()
    with start(live_server, settings) as client:
        assert register(client, "old@example.com").status_code == 201
    stronger = settings.replace(argon2_memory_kib=2048)
    with start(live_server, stronger) as client:
        assert login(client, "old@example.com").status_code == 200
    stored = Database(settings.database_url).call(
        lambda conn: conn.execute(select(users.c.password_hash)).scalar_one()
    )
    assert "$m=2048,t=1,p=1$" in stored


def test_the_degraded_profile_serves_the_same_contract(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> None:
    with start(live_server, make_settings(profile="degraded")) as client:
        assert register(client, "slow@example.com").status_code == 201
        token = login(client, "slow@example.com").json()["access_token"]
        me = client.get("/auth/me", headers=bearer(token))
        assert me.status_code == 200
        # no cache tier in the degraded profile: the record comes from the database
        assert "db;dur=" in me.headers["server-timing"]
        assert client.post("/auth/logout", headers=bearer(token)).status_code == 204
        assert client.get("/auth/me", headers=bearer(token)).status_code == 401


# -- the hot path and revocation across processes --------------------------------------------


def test_a_warm_me_makes_no_database_call(client: httpx.Client) -> None:
    register(client, "warm@example.com")
    token = login(client, "warm@example.com").json()["access_token"]
    client.get("/auth/me", headers=bearer(token))
    warm = client.get("/auth/me", headers=bearer(token))
    assert warm.status_code == 200
    timing = warm.headers["server-timing"]
    assert 'cache;desc="L1"' in timing
    assert "db;dur=" not in timing
    assert "hash;dur=" not in timing


@pytest.mark.redis
def test_logout_revokes_tokens_at_once_in_another_process(
    redis_settings: Callable[..., Settings],
    live_server: Callable[..., Any],
) -> None:
    settings = redis_settings()
    with start(live_server, settings) as a:
        b = httpx.Client(base_url=live_server(settings).url + API, timeout=10)
        register(a, "two@example.com")
        token = login(a, "two@example.com").json()["access_token"]
        for client in (a, b, a, b):  # warm both processes' L1
            assert client.get("/auth/me", headers=bearer(token)).status_code == 200
        assert (
            'cache;desc="L1"' in b.get("/auth/me", headers=bearer(token)).headers["server-timing"]
        )
        assert a.post("/auth/logout", headers=bearer(token)).status_code == 204
        # the cache's invalidation broadcast reached b before this request did
        assert_error(b.get("/auth/me", headers=bearer(token)), 401, "invalid_token")
        b.close()


def test_without_redis_logout_reaches_another_process_within_the_l1_ttl(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> None:
    settings = make_settings(l1_ttl_s=0.5)
    with start(live_server, settings) as a:
        b = httpx.Client(base_url=live_server(settings).url + API, timeout=10)
        register(a, "ttl@example.com")
        token = login(a, "ttl@example.com").json()["access_token"]
        assert b.get("/auth/me", headers=bearer(token)).status_code == 200
        assert a.post("/auth/logout", headers=bearer(token)).status_code == 204
        logged_out = time.monotonic()
        assert_error(a.get("/auth/me", headers=bearer(token)), 401, "invalid_token")
        while b.get("/auth/me", headers=bearer(token)).status_code == 200:
            # the bound the README states: b's L1 entry lives at most l1_ttl_s
            assert time.monotonic() - logged_out < settings.l1_ttl_s + 1.0
            time.sleep(0.05)
        b.close()


WEIRD_BODIES = [
    rb'{"email": "a\ud800@example.com", "password": "password123"}',
    rb'{"email": "b@example.com", "password": "pass\ud800word123"}',
    rb'{"email": "c@example.com", "password": "password123", "full_name": "x\udfff"}',
    rb'{"email": "d\u0000@example.com", "password": "password123"}',
    rb'{"email": "e@example.com", "password": "pass\u0000word123", "full_name": "a\u0000b"}',
    rb'{"email": "f@example.com", "password": "password123", "full_name": "\u0000"}',
    b'{"email": "\xc3\xa9l\xc3\xa8ve@exemple.fr", "password": "mot de passe \xe2\x9c\x93"}',
    b'{"email": "g@example.com", "password": "password123"} trailing',
    b'{"email": "g@example.com", "email": 5, "password": "password123"}',
    b'{"email": "h@example.com", "password": "' + b"p" * 60_000 + b'"}',
    b'{"email": {"$ne": null}, "password": {"$ne": null}}',
    b'{"email": "i@example.com", "password": 1e309}',
    b"[" * 10_000 + b"]" * 10_000,
    b'"\\u0000"',
    b"NaN",
]


def test_no_input_makes_a_500_on_either_database(
    any_db_settings: Settings, live_server: Callable[..., Any]
) -> None:
    with start(live_server, any_db_settings) as client:
        for path in ("/auth/register", "/auth/login"):
            for raw in WEIRD_BODIES:
                r = client.post(path, content=raw, headers={"content-type": "application/json"})
                assert r.status_code < 500, (path, raw[:80], r.text)
                if r.status_code >= 400:
                    assert_error(r, r.status_code, r.json()["error"]["code"])
                assert_common_headers(r)
        # the non-ASCII account above is real: it registered and can log in
        r = login(client, "ÉLÈVE@exemple.fr", "mot de passe ✓")
        assert r.status_code == 200, r.text
        for header in ("Bearer \u00ff\u00fe.abc.def", "Bearer a.b", "Bearer ....", "Bearer ="):
            me = client.get("/auth/me", headers={"Authorization": header.encode("latin-1")})
            assert_error(me, 401, "invalid_token")

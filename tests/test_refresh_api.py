"""The contract's refresh section, over a real socket: rotation, reuse detection, logout,
expiry, hashed storage and concurrent refreshes, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from tests.helpers import (
    BIN,
    assert_common_headers,
    assert_error,
    bearer,
    login,
    register,
    start,
    velro_serve,
)
from velro import refresh
from velro.db import Database
from velro.db.schema import refresh_tokens
from velro.settings import Settings

PAIR = {"access_token", "token_type", "expires_in", "refresh_token", "refresh_expires_in"}


@pytest.fixture
def client(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> Iterator[httpx.Client]:
    with start(live_server, make_settings()) as c:
        yield c


def _signed_in(client: httpx.Client, email: str) -> dict[str, Any]:
    register(client, email)
    r = login(client, email)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _refresh(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/auth/refresh", json={"refresh_token": token})


def _refused(r: httpx.Response) -> None:
    assert_error(r, 401, "invalid_token")
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'


# -- what login and refresh answer -----------------------------------------------------------


def test_login_answers_a_refresh_token_of_256_random_bits(client: httpx.Client) -> None:
    first = _signed_in(client, "bits@example.com")
    second = login(client, "bits@example.com").json()
    assert set(first) == PAIR
    token = first["refresh_token"]
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) >= 32
    assert token != second["refresh_token"]
    assert first["refresh_expires_in"] == 14 * 86400  # the default: two weeks


def test_refresh_rotates_the_pair_and_consumes_the_token_sent(
    any_db_settings: Settings, live_server: Callable[..., Any]
) -> None:
    with start(live_server, any_db_settings) as client:
        user = register(client, "rotate@example.com").json()
        first = login(client, "rotate@example.com").json()
        r = _refresh(client, first["refresh_token"])
        assert r.status_code == 200, r.text
        second = r.json()
        assert set(second) == PAIR
        assert second["token_type"] == "bearer"
        assert second["expires_in"] == any_db_settings.token_ttl_s
        assert second["refresh_expires_in"] == any_db_settings.refresh_token_ttl_s
        assert second["refresh_token"] != first["refresh_token"]
        assert r.headers["cache-control"] == "no-store"
        assert r.headers["pragma"] == "no-cache"
        assert "db;dur=" in r.headers["server-timing"]
        assert_common_headers(r)
        me = client.get("/auth/me", headers=bearer(second["access_token"]))
        assert me.status_code == 200
        assert me.json() == user
        # the newest token goes on rotating, one after the other
        third = _refresh(client, second["refresh_token"])
        assert third.status_code == 200, third.text
        assert third.json()["refresh_token"] not in (
            first["refresh_token"],
            second["refresh_token"],
        )


# -- reuse detection, logout, expiry ---------------------------------------------------------


def test_a_replayed_token_is_refused_and_revokes_its_whole_family(
    any_db_settings: Settings, live_server: Callable[..., Any]
) -> None:
    with start(live_server, any_db_settings) as client:
        first = _signed_in(client, "replay@example.com")
        other_session = login(client, "replay@example.com").json()
        second = _refresh(client, first["refresh_token"]).json()
        third = _refresh(client, second["refresh_token"]).json()

        _refused(_refresh(client, first["refresh_token"]))  # the replay
        # the family's newest token, never used, is refused too: the thief may hold it
        _refused(_refresh(client, third["refresh_token"]))
        _refused(_refresh(client, second["refresh_token"]))
        # another login of the same user is another family, untouched
        assert _refresh(client, other_session["refresh_token"]).status_code == 200


def test_logout_revokes_every_refresh_family_of_that_user_only(client: httpx.Client) -> None:
    phone = _signed_in(client, "many@example.com")
    laptop = login(client, "many@example.com").json()
    rotated = _refresh(client, phone["refresh_token"]).json()
    other = _signed_in(client, "other@example.com")

    out = client.post("/auth/logout", headers=bearer(rotated["access_token"]))
    assert out.status_code == 204
    _refused(_refresh(client, rotated["refresh_token"]))
    _refused(_refresh(client, laptop["refresh_token"]))
    _refused(_refresh(client, phone["refresh_token"]))
    assert _refresh(client, other["refresh_token"]).status_code == 200
    # a login after the logout starts a family that works
    again = login(client, "many@example.com").json()
    assert _refresh(client, again["refresh_token"]).status_code == 200


def test_a_refresh_token_past_its_lifetime_is_refused(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> None:
    settings = make_settings(refresh_token_ttl_s=1)
    with start(live_server, settings) as client:
        early = _signed_in(client, "expiry@example.com")
        late = login(client, "expiry@example.com").json()
        assert late["refresh_expires_in"] == 1
        assert _refresh(client, early["refresh_token"]).status_code == 200
        time.sleep(1.1)  # the token's one-second lifetime passes
        _refused(_refresh(client, late["refresh_token"]))


def test_tokens_that_were_never_issued_are_refused(client: httpx.Client) -> None:
    good = _signed_in(client, "unknown@example.com")["refresh_token"]
    for token in (
        refresh.new_token(),
        good[:-1] + ("A" if good[-1] != "A" else "B"),
        good + "x",
        # what the database holds is not a credential
        hashlib.sha256(good.encode()).hexdigest(),
        "x",
    ):
        _refused(_refresh(client, token))
    assert _refresh(client, good).status_code == 200  # none of the above touched it


def test_refresh_tokens_are_stored_as_their_sha256_only(
    any_db_settings: Settings, live_server: Callable[..., Any]
) -> None:
    with start(live_server, any_db_settings) as client:
        first = _signed_in(client, "hashed@example.com")["refresh_token"]
        second = _refresh(client, first).json()["refresh_token"]
    db = Database(any_db_settings.database_url)
    rows = db.call(lambda conn: [tuple(r) for r in conn.execute(select(refresh_tokens))])
    db.close()
    assert len(rows) == 2
    stored = " ".join(str(value) for row in rows for value in row)
    for token in (first, second):
        assert token not in stored
        assert hashlib.sha256(token.encode()).hexdigest() in stored
    if any_db_settings.database_url.startswith("sqlite"):
        path = Path(any_db_settings.database_url.removeprefix("sqlite:///"))
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        for token in (first, second):
            assert all(token.encode() not in p.read_bytes() for p in files)


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b"{}", "application/json", 422, "invalid_request"),
        (b'{"refresh_token": 5}', "application/json", 422, "invalid_request"),
        (b'{"refresh_token": null}', "application/json", 422, "invalid_request"),
        (b'{"refresh_token": ""}', "application/json", 422, "invalid_request"),
        (b'{"refresh_token": ["a"]}', "application/json", 422, "invalid_request"),
        (b'{"refresh_token": "' + b"a" * 513 + b'"}', "application/json", 422, "invalid_request"),
        (b'{"refresh_token": "a\\u0000b"}', "application/json", 422, "invalid_request"),
        (b'["token"]', "application/json", 422, "invalid_request"),
        (b'{"refresh_token": "a",', "application/json", 400, "malformed_json"),
        (b"refresh_token=a", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_a_malformed_refresh_body_is_4xx_in_the_error_shape(
    client: httpx.Client, content: bytes, content_type: str, status: int, code: str
) -> None:
    r = client.post("/auth/refresh", content=content, headers={"content-type": content_type})
    assert_error(r, status, code)
    assert_common_headers(r)


# -- concurrency -----------------------------------------------------------------------------


def test_concurrent_refreshes_of_one_token_let_exactly_one_win(
    any_db_settings: Settings, live_server: Callable[..., Any]
) -> None:
    with start(live_server, any_db_settings) as client:
        token = _signed_in(client, "race@example.com")["refresh_token"]
        url = str(client.base_url).rstrip("/") + "/auth/refresh"
        racers = 8
        barrier = threading.Barrier(racers)

        def attempt(_: int) -> httpx.Response:
            with httpx.Client(timeout=10) as own:
                barrier.wait()
                return own.post(url, json={"refresh_token": token})

        with concurrent.futures.ThreadPoolExecutor(racers) as pool:
            answers = list(pool.map(attempt, range(racers)))
        won = [r for r in answers if r.status_code == 200]
        assert len(won) == 1, [r.status_code for r in answers]
        for r in answers:
            if r.status_code != 200:
                _refused(r)
        # every loser presented a consumed token: the winner's successor is revoked with it
        _refused(_refresh(client, won[0].json()["refresh_token"]))


def test_two_rotations_from_one_read_let_only_the_first_write_win(
    any_db_settings: Settings,
) -> None:
    """The guard is the conditional UPDATE, not the read: two requests that both read the
    token unconsumed cannot both rotate it (each step in a transaction of its own, as two
    requests' would be)."""
    db = Database(any_db_settings.database_url)
    db.create_all()
    from velro.users import insert_user

    user = db.call(insert_user, "stale@example.com", "not-a-hash", None)
    now = datetime.now(UTC)
    old, first, second = (hashlib.sha256(bytes([i])).hexdigest() for i in range(3))
    db.call(refresh.insert_token, old, "family-1", user["id"], now, 600)

    seen_by_a = db.call(refresh.read_token, old)
    seen_by_b = db.call(refresh.read_token, old)
    assert seen_by_a is not None
    assert seen_by_b is not None
    assert not seen_by_a.consumed
    assert not seen_by_b.consumed
    won = db.call(refresh.consume, seen_by_a, first, now, 600)
    assert won == refresh.Rotated(user_id=user["id"], token_version=0)
    assert db.call(refresh.consume, seen_by_b, second, now, 600) == "replayed"

    newest = db.call(refresh.read_token, first)
    assert newest is not None
    assert newest.revoked
    assert db.call(refresh.read_token, second) is None  # and stored no successor
    db.close()


@pytest.mark.postgres
def test_on_postgres_a_rotation_waiting_for_the_row_lock_loses(postgres_url: str) -> None:
    """Two transactions really interleaved: B reads the token unconsumed while A holds the
    row, waits for A's lock, and after A commits its UPDATE finds the row consumed."""
    from sqlalchemy import text

    from velro.users import insert_user

    db = Database(postgres_url)
    db.create_all()
    user = db.call(insert_user, "locked@example.com", "not-a-hash", None)
    now = datetime.now(UTC)
    old, for_a, for_b = (hashlib.sha256(bytes([i])).hexdigest() for i in range(3))
    db.call(refresh.insert_token, old, "family-2", user["id"], now, 600)

    outcome_b: list[object] = []
    with db.engine.connect() as conn_a:
        tx_a = conn_a.begin()
        assert isinstance(refresh.rotate_token(conn_a, old, for_a, now, 600), refresh.Rotated)
        b = threading.Thread(
            target=lambda: outcome_b.append(db.call(refresh.rotate_token, old, for_b, now, 600))
        )
        b.start()
        deadline = time.monotonic() + 10
        waiting = 0
        while waiting == 0:
            assert time.monotonic() < deadline, "B never waited for A's row lock"
            # from a connection of its own: a transaction sees one snapshot of the statistics
            with db.engine.connect() as probe:
                waiting = probe.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()"
                    )
                ).scalar_one()
            time.sleep(0.01)  # polling for B to reach the lock, not modelling a cost
        tx_a.commit()
    b.join(timeout=10)
    assert outcome_b == ["replayed"]
    newest = db.call(refresh.read_token, for_a)
    assert newest is not None
    assert newest.revoked
    db.close()


# -- monitoring, the degraded profile, velro serve -------------------------------------------


def test_the_refresh_route_is_tracked_like_the_others(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> None:
    with start(live_server, make_settings()) as client:
        token = _signed_in(client, "tracked@example.com")["refresh_token"]
        for _ in range(3):
            token = _refresh(client, token).json()["refresh_token"]
        _refused(_refresh(client, "never-issued"))
        snapshot = client.get("/performance/metrics").json()
        text = httpx.get(str(client.base_url).removesuffix("/api/v1/") + "/metrics").text
    route = snapshot["routes"]["POST /api/v1/auth/refresh"]
    assert route["count"] == 4
    assert route["client_errors"] == 1
    assert route["p95"] > 0
    families = {f.name: f for f in text_string_to_metric_families(text)}
    counted = {s.labels["route"]: s.value for s in families["velro_requests"].samples}
    assert counted["POST /api/v1/auth/refresh"] == 4


def test_the_degraded_profile_refreshes_plainly_and_correctly(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> None:
    with start(live_server, make_settings(profile="degraded")) as client:
        first = _signed_in(client, "plain@example.com")
        r = _refresh(client, first["refresh_token"])
        assert r.status_code == 200, r.text
        second = r.json()
        assert client.get("/auth/me", headers=bearer(second["access_token"])).status_code == 200
        _refused(_refresh(client, first["refresh_token"]))
        _refused(_refresh(client, second["refresh_token"]))


def test_velro_serve_takes_both_token_lifetimes(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VELRO_DATABASE_URL": f"sqlite:///{tmp_path / 'v.db'}",
        "VELRO_REDIS_URL": "",
        "VELRO_ARGON2_MEMORY_KIB": "1024",
        "VELRO_ARGON2_TIME_COST": "1",
        "VELRO_TOKEN_TTL_S": "900",  # the option overrides the variable
    }
    velro = str(BIN / "velro")
    subprocess.run([velro, "db", "init"], env=env, capture_output=True, check=True, timeout=60)
    options = ["--access-token-ttl", "120", "--refresh-token-ttl", "600"]
    with (
        velro_serve(
            tmp_path,
            env,
            interval_s=0.2,
            not_up=lambda log: pytest.fail(log[-2000:]),
            options=options,
        ) as base,
        httpx.Client(base_url=base + "/api/v1", timeout=10) as client,
    ):
        body = _signed_in(client, "serve@example.com")
        assert (body["expires_in"], body["refresh_expires_in"]) == (120, 600)
        again = _refresh(client, body["refresh_token"]).json()
        assert (again["expires_in"], again["refresh_expires_in"]) == (120, 600)

    bad = subprocess.run(
        [velro, "serve", "--access-token-ttl", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "--access-token-ttl is 0" in bad.stderr

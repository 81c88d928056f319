"""Service keys: created by the CLI, checked per request, cached, revoked at once everywhere."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.helpers import (
    API,
    Api,
    free_port,
)
from velro import service_keys
from velro.db import Database
from velro.db.schema import service_keys as service_keys_table
from velro.settings import Settings

VELRO = str(Path(sys.executable).with_name("velro"))


def velro(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``velro`` CLI in a subprocess against the test's database and Redis."""
    env = {
        **os.environ,
        "VELRO_DATABASE_URL": settings.database_url,
        "VELRO_REDIS_URL": settings.redis_url,
        "VELRO_REDIS_PREFIX": settings.redis_prefix,
    }
    return subprocess.run(
        [VELRO, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def create_key_cli(settings: Settings, name: str) -> tuple[str, str]:
    done = velro(settings, "keys", "create", "--name", name)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(":", 1) for line in done.stdout.splitlines())
    return lines["id"].strip(), lines["key"].strip()


def key_checker(server: Any) -> service_keys.ServiceKeys:
    checker: service_keys.ServiceKeys = server.app.state.services.service_keys
    return checker


def wait_live(server: Any, timeout_s: float = 10.0) -> None:
    """Wait for the app's revocation subscription: only then does it cache keys."""
    deadline = time.monotonic() + timeout_s
    while not key_checker(server).live:
        assert time.monotonic() < deadline, "the revocation subscription never came up"
        time.sleep(0.02)


def get_user(base: str, user_id: str, key: str | None) -> httpx.Response:
    headers = {} if key is None else {"X-Service-Key": key}
    return httpx.get(f"{base}{API}/internal/users/{user_id}", headers=headers, timeout=10)


def test_the_cli_prints_a_key_once_and_stores_only_its_sha256(
    make_settings: Callable[..., Settings], api: Api
) -> None:
    settings = make_settings()
    server = api.serve(settings)
    with httpx.Client(base_url=server.url + API) as client:
        user = api.register(client, "svc-target@example.com").json()
    key_id, key = create_key_cli(settings, "billing")
    assert key.startswith(service_keys.KEY_PREFIX)
    assert len(key) >= 40

    rows = Database(settings.database_url).call(
        lambda conn: conn.execute(select(service_keys_table)).mappings().all()
    )
    assert len(rows) == 1
    assert rows[0]["id"] == key_id
    assert rows[0]["key_sha256"] == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(dict(rows[0]))

    listing = velro(settings, "keys", "list")
    assert listing.returncode == 0
    assert key_id in listing.stdout
    assert "billing" in listing.stdout
    assert "active" in listing.stdout
    assert key not in listing.stdout

    ok = get_user(server.url, user["id"], key)
    assert ok.status_code == 200, ok.text
    assert ok.json() == user
    api.assert_common_headers(ok)


def test_a_missing_wrong_or_odd_key_is_401(
    make_settings: Callable[..., Settings], api: Api
) -> None:
    settings = make_settings()
    with api.start(settings) as client:
        user = api.register(client, "guarded@example.com").json()
        base = str(client.base_url).removesuffix("/").removesuffix(API)
        Database(settings.database_url).call(service_keys.create_key, "real")
        for key in [None, "", "vsk_wrong", "x" * 5000, "vsk_" + "A" * 43]:
            r = get_user(base, user["id"], key)
            api.assert_error(r, 401, "invalid_service_key")
            api.assert_common_headers(r)
        # without a valid key even a malformed id says nothing but 401
        api.assert_error(get_user(base, "not-a-uuid", None), 401, "invalid_service_key")


def test_with_a_valid_key_a_bad_id_is_422_and_an_unknown_user_404(
    make_settings: Callable[..., Settings], api: Api
) -> None:
    settings = make_settings()
    with api.start(settings) as client:
        base = str(client.base_url).removesuffix("/").removesuffix(API)
        _, key = Database(settings.database_url).call(service_keys.create_key, "ops")
        for bad in ["not-a-uuid", "123", "0" * 40]:
            api.assert_error(get_user(base, bad, key), 422, "invalid_request")
        api.assert_error(get_user(base, str(uuid.uuid4()), key), 404, "not_found")


@pytest.fixture
def two_processes(
    redis_settings: Callable[..., Settings], live_server: Callable[..., Any], api: Api
) -> tuple[Settings, dict[str, Any], Any, Any]:
    """Settings with Redis, a registered user, and two service processes sharing them."""
    settings = redis_settings()
    with api.start(settings) as client:
        user = api.register(client, "shared-key@example.com").json()
    return settings, user, live_server(settings), live_server(settings)


@pytest.mark.redis
def test_revocation_takes_effect_at_once_in_every_process(
    two_processes: tuple[Settings, dict[str, Any], Any, Any], api: Api
) -> None:
    settings, user, first, second = two_processes
    key_id, key = create_key_cli(settings, "partner")
    for server in (first, second):
        wait_live(server)
        for _ in range(3):
            assert get_user(server.url, user["id"], key).status_code == 200
        # the key is cached: later checks made no database call
        assert key_checker(server).hits >= 2

    done = velro(settings, "keys", "revoke", key_id)
    assert done.returncode == 0, done.stderr
    assert "notified" in done.stdout

    for server in (first, second):
        api.assert_error(get_user(server.url, user["id"], key), 401, "invalid_service_key")
    listing = velro(settings, "keys", "list")
    assert "revoked" in listing.stdout


@pytest.mark.redis
def test_revoking_from_the_app_itself_is_immediate_there_and_elsewhere(
    two_processes: tuple[Settings, dict[str, Any], Any, Any], api: Api
) -> None:
    import asyncio

    settings, user, one, two = two_processes
    key_id, key = Database(settings.database_url).call(service_keys.create_key, "internal")
    for server in (one, two):
        wait_live(server)
        assert get_user(server.url, user["id"], key).status_code == 200
        assert get_user(server.url, user["id"], key).status_code == 200

    # revoke on server one's own event loop, as an admin route of the app would
    svc = one.app.state.services
    loop = key_checker(one)._task.get_loop()  # type: ignore[union-attr]  # running: live
    future = asyncio.run_coroutine_threadsafe(svc.service_keys.revoke(svc, key_id), loop)
    assert future.result(timeout=10) is True
    for server in (one, two):
        api.assert_error(get_user(server.url, user["id"], key), 401, "invalid_service_key")


def test_without_redis_every_check_reads_the_database_so_revocation_is_immediate(
    make_settings: Callable[..., Settings], api: Api
) -> None:
    # Redis configured but down: no subscription, so the cache must not answer
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with api.start(settings) as client:
        user = api.register(client, "nokache@example.com").json()
        base = str(client.base_url).removesuffix("/").removesuffix(API)
        db = Database(settings.database_url)
        key_id, key = db.call(service_keys.create_key, "fallback")
        for _ in range(3):
            assert get_user(base, user["id"], key).status_code == 200
        assert db.call(service_keys.revoke_key, key_id) is not None
        api.assert_error(get_user(base, user["id"], key), 401, "invalid_service_key")
        db.close()


def test_the_cli_says_when_it_could_not_notify_the_apps(
    make_settings: Callable[..., Settings], api: Api
) -> None:
    settings = make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with api.start(settings):
        key_id, _ = Database(settings.database_url).call(service_keys.create_key, "x")
    done = velro(settings, "keys", "revoke", key_id)
    assert done.returncode == 1
    assert "revoked" in done.stderr
    assert "VELRO_SERVICE_KEY_TTL_S" in done.stderr
    rows = Database(settings.database_url).call(service_keys.list_keys)
    assert rows[0]["revoked_at"] is not None  # the database half is done all the same
    unknown = velro(settings, "keys", "revoke", "no-such-id")
    assert unknown.returncode == 2
    assert "no service key has id" in unknown.stderr


def test_the_cli_names_the_fix_when_the_schema_is_missing(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'empty.db'}", redis_url="", jwt_secret="s" * 40
    )
    done = velro(settings, "keys", "list")
    assert done.returncode == 2
    assert "velro db init" in done.stderr


def test_the_degraded_profile_never_caches_a_key(
    make_settings: Callable[..., Settings], api: Api
) -> None:
    settings = make_settings(profile="degraded")
    server = api.serve(settings)
    with httpx.Client(base_url=server.url + API) as client:
        user = api.register(client, "degraded@example.com").json()
    _, key = Database(settings.database_url).call(service_keys.create_key, "slow")
    for _ in range(3):
        assert get_user(server.url, user["id"], key).status_code == 200
    assert key_checker(server).hits == 0
    assert key_checker(server).misses == 3


def test_redis_dying_turns_the_cache_off_so_revocation_stays_immediate(
    make_settings: Callable[..., Settings],
    own_redis: tuple[str, subprocess.Popen[bytes]],
    api: Api,
) -> None:
    url, proc = own_redis
    settings = make_settings(redis_url=url)
    server = api.serve(settings)
    with httpx.Client(base_url=server.url + API) as client:
        user = api.register(client, "outage@example.com").json()
    db = Database(settings.database_url)
    key_id, key = db.call(service_keys.create_key, "outage")
    wait_live(server)
    assert get_user(server.url, user["id"], key).status_code == 200
    assert get_user(server.url, user["id"], key).status_code == 200
    assert key_checker(server).hits == 1

    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while key_checker(server).live:  # the subscription's socket closes with the server
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # no message can arrive now, so the check reads the database: revocation is seen at once
    assert get_user(server.url, user["id"], key).status_code == 200
    assert db.call(service_keys.revoke_key, key_id) is not None
    api.assert_error(get_user(server.url, user["id"], key), 401, "invalid_service_key")
    db.close()

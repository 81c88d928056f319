"""Failed-login limits per account and per address: 429 with Retry-After, shared via Redis."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from tests.helpers import (
    API,
    Api,
    assert_common_headers,
    assert_error,
    free_port,
)
from velro.settings import Settings


def assert_rate_limited(r: httpx.Response, window_s: int = 60) -> int:
    assert_error(r, 429, "rate_limited")
    assert_common_headers(r)
    retry_after = int(r.headers["retry-after"])  # whole seconds, RFC 9110 10.2.3
    assert 1 <= retry_after <= window_s
    return retry_after


def test_ten_failed_logins_lock_the_account_by_default(
    make_settings: Callable[..., Settings], api: Api
) -> None:
    settings = make_settings()
    assert settings.login_failures_per_account == "10/minute"
    with api.start(settings) as client:
        api.register(client, "victim@example.com")
        api.register(client, "bystander@example.com")
        for _ in range(10):
            api.assert_error(
                api.login(client, "victim@example.com", "guess-guess"), 401, "invalid_credentials"
            )
        assert_rate_limited(api.login(client, "victim@example.com", "guess-guess"))
        # the right password does not get through a locked account either
        assert_rate_limited(api.login(client, "Victim@Example.com "))
        # another account from the same address is not locked (address limit is 300)
        assert api.login(client, "bystander@example.com").status_code == 200


def test_unknown_accounts_are_limited_like_known_ones(
    make_settings: Callable[..., Settings], api: Api
) -> None:
    with api.start(make_settings(login_failures_per_account="2/minute")) as client:
        for _ in range(2):
            api.assert_error(api.login(client, "ghost@example.com"), 401, "invalid_credentials")
        assert_rate_limited(api.login(client, "ghost@example.com"))


def test_a_successful_login_is_not_counted_as_a_failure(
    make_settings: Callable[..., Settings], api: Api
) -> None:
    with api.start(make_settings(login_failures_per_account="3/minute")) as client:
        api.register(client, "mixed@example.com")
        assert api.login(client, "mixed@example.com", "wrong-one").status_code == 401
        for _ in range(6):
            assert api.login(client, "mixed@example.com").status_code == 200
        assert api.login(client, "mixed@example.com", "wrong-two").status_code == 401
        assert api.login(client, "mixed@example.com", "wrong-three").status_code == 401
        assert_rate_limited(api.login(client, "mixed@example.com"))


def test_failures_from_one_address_over_many_accounts_are_limited(
    make_settings: Callable[..., Settings], api: Api
) -> None:
    settings = make_settings(login_failures_per_address="4/minute")
    with api.start(settings) as client:
        api.register(client, "real@example.com")
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 (a local proxy): one header, one client
        spray = {"X-Forwarded-For": "203.0.113.7"}
        for i in range(4):
            r = client.post(
                "/auth/login",
                headers=spray,
                json={"email": f"user{i}@example.com", "password": "123456789"},
            )
            assert r.status_code == 401
        r = client.post(
            "/auth/login",
            headers=spray,
            json={"email": "real@example.com", "password": "correct horse battery"},
        )
        retry = assert_rate_limited(r)
        assert retry > 50  # the oldest failure is seconds old: most of the window remains
        assert "address" in r.json()["error"]["message"]
        # another client is not affected
        other = client.post(
            "/auth/login",
            headers={"X-Forwarded-For": "198.51.100.2"},
            json={"email": "real@example.com", "password": "correct horse battery"},
        )
        assert other.status_code == 200


@pytest.mark.redis
def test_two_apps_sharing_redis_count_failures_together(
    redis_settings: Callable[..., Settings],
    live_server: Callable[..., Any],
    redis_server: str,
    redis_prefix: str,
    api: Api,
) -> None:
    settings = redis_settings(login_failures_per_account="4/minute")
    with api.start(settings) as a:
        b = httpx.Client(base_url=live_server(settings).url + API, timeout=10)
        api.register(a, "shared@example.com")
        assert api.login(a, "shared@example.com", "wrong-1").status_code == 401
        assert api.login(b, "shared@example.com", "wrong-2").status_code == 401
        assert api.login(a, "shared@example.com", "wrong-3").status_code == 401
        assert api.login(b, "shared@example.com", "wrong-4").status_code == 401
        assert_rate_limited(api.login(a, "shared@example.com"))
        assert_rate_limited(api.login(b, "shared@example.com"))
        b.close()
    keys = redis.Redis.from_url(redis_server).keys(f"{redis_prefix}limits*")
    assert keys, "the limiter kept no state in Redis"
    # accounts are stored by the SHA-256 of the email, never the address itself
    assert not any(b"shared@example.com" in k for k in keys)


def test_a_redis_that_does_not_answer_leaves_login_and_me_working(
    make_settings: Callable[..., Settings], api: Api
) -> None:
    # nothing listens on this port: configured but down from the start
    settings = make_settings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0", login_failures_per_account="2/minute"
    )
    with api.start(settings) as client:
        api.register(client, "alone@example.com")
        token = api.login(client, "alone@example.com").json()["access_token"]
        assert client.get("/auth/me", headers=api.bearer(token)).status_code == 200
        # the limits still hold, counted in the process's memory
        assert api.login(client, "alone@example.com", "nope-nope").status_code == 401
        assert api.login(client, "alone@example.com", "nope-nope").status_code == 401
        assert_rate_limited(api.login(client, "alone@example.com"))


def test_redis_dying_while_serving_leaves_login_and_me_working(
    make_settings: Callable[..., Settings],
    own_redis: tuple[str, subprocess.Popen[bytes]],
    api: Api,
) -> None:
    url, proc = own_redis
    settings = make_settings(redis_url=url, login_failures_per_account="3/minute")
    with api.start(settings) as client:
        api.register(client, "survivor@example.com")
        token = api.login(client, "survivor@example.com").json()["access_token"]
        assert api.login(client, "survivor@example.com", "wrong-pass").status_code == 401
        assert redis.Redis.from_url(url).keys("velro:limits*")  # counted in Redis

        proc.kill()
        proc.wait(timeout=10)

        statuses = [client.get("/auth/me", headers=api.bearer(token)).status_code for _ in range(5)]
        assert statuses == [200] * 5
        fresh = api.login(client, "survivor@example.com")
        assert fresh.status_code == 200
        assert (
            client.get("/auth/me", headers=api.bearer(fresh.json()["access_token"])).status_code
            == 200
        )
        # from here failures are counted in memory: the limit still holds, with a fresh count
        for _ in range(3):
            assert api.login(client, "survivor@example.com", "wrong-pass").status_code == 401
        assert_rate_limited(api.login(client, "survivor@example.com"))

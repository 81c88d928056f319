"""The user classes and hooks in-process, on a Locust Environment, against the real reference
service (`velro serve` on a loopback port, seeded by `velro seed`).

Each test builds an Environment as locust's main does, lets scenarios.hooks.setup attach the
runtime, and calls a user's on_start and tasks directly: every request crosses a real socket
and is checked, counted by Locust and recorded as samples.csv rows.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import httpx
import pytest

from tests.helpers import BIN, shape_toml, velro_serve, workload_toml
from tests.locust_inprocess import Environment, Events
from velro_perf.reports.samplefiles import SCHEMA
from velro_perf.reports.samples import SampleStore
from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.hooks import setup
from velro_perf.scenarios.runtime import Runtime
from velro_perf.scenarios.users import (
    AbuseUser,
    AuthorizationUser,
    LoginUser,
    RegistrationUser,
    ServiceKeyUser,
    TokenAuthUser,
    VelroUser,
)

ALL = [AbuseUser, AuthorizationUser, LoginUser, RegistrationUser, ServiceKeyUser, TokenAuthUser]
SHAPES = shape_toml(
    "unit", warmup_s=0, wait_s=(0.5, 1.5), seed=(6, 2, 12), duration_s=5, users=4, spawn_rate=4
)
WORKLOAD = workload_toml(
    {"authentication": 3, "authorization": 1, "registration": 0, "service_key": 1},
    {"login": 1, "abuse": 1},
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`velro serve` on a free port; yields (base URL, the fixtures file `velro seed` wrote)."""
    workdir = tmp_path_factory.mktemp("velro-users")
    env = {
        **os.environ,
        "VELRO_DATABASE_URL": f"sqlite:///{workdir / 'v.db'}",
        "VELRO_REDIS_URL": "",
        "VELRO_ARGON2_MEMORY_KIB": "1024",
        "VELRO_ARGON2_TIME_COST": "1",
        "VELRO_LOG_LEVEL": "warning",
    }
    velro = str(BIN / "velro")
    fixtures = workdir / "fixtures.json"
    for argv in (
        [velro, "db", "init"],
        [velro, "seed", "--users", "6", "--teams", "2", "--projects", "12", "--out", str(fixtures)],
    ):
        subprocess.run(argv, env=env, capture_output=True, check=True, timeout=120)
    with velro_serve(
        workdir, env, interval_s=0.2, not_up=lambda log: pytest.fail(log[-2000:])
    ) as base:
        yield base, fixtures


Build = Callable[..., Environment]


@pytest.fixture
def environment(service: tuple[str, Path], tmp_path: Path) -> Iterator[Build]:
    """`environment(**options)`: an Environment set up as locust's main would, its test
    started (seed loaded); stopped and quit afterwards."""
    base, fixtures = service
    (tmp_path / "shapes.toml").write_text(SHAPES, encoding="utf-8")
    (tmp_path / "workload.toml").write_text(WORKLOAD, encoding="utf-8")
    built: list[Environment] = []

    def build(user_classes: list[type[VelroUser]] | None = None, **options: Any) -> Environment:
        values: dict[str, Any] = {
            "velro_shape": "unit",
            "velro_shapes": str(tmp_path / "shapes.toml"),
            "velro_workload": str(tmp_path / "workload.toml"),
            "velro_out": "",
            "velro_fixtures": str(fixtures),
            "velro_open_rate": 0.0,
            "velro_service_key": "",
            "velro_gc_rss_limit_mb": 2048.0,
        }
        parsed = argparse.Namespace(**{**values, **options})
        env = Environment(
            user_classes=list(user_classes or ALL),
            host=base,
            events=Events(),
            parsed_options=parsed,
        )
        env.create_local_runner()
        setup(env)
        env.velro_test_users = []  # type: ignore[attr-defined]
        env.events.test_start.fire(environment=env)
        built.append(env)
        return env

    yield build
    for env in built:
        for user in env.velro_test_users:  # type: ignore[attr-defined]
            user.client.close()  # its keep-alive connection to the service
        env.events.test_stop.fire(environment=env)
        env.events.quitting.fire(environment=env)


def _user(env: Environment, user_class: type[VelroUser]) -> Any:
    """A user of `user_class` on `env`, its host set as Locust's runner sets it at start."""
    user = type(user_class.__name__, (user_class,), {"host": env.host})(env)
    env.velro_test_users.append(user)  # type: ignore[attr-defined]  # closed by the fixture
    return user


def _rows(env: Environment) -> list[list[Any]]:
    return Runtime.of(env).recorder.take()


def _signed_in(env: Environment, user_class: type[VelroUser]) -> Any:
    """A user of `user_class` past its on_start (signed in where it signs in), its rows
    recorded without a run folder (read them with _rows)."""
    Runtime.of(env).recorder.enabled = True
    user = _user(env, user_class)
    user.on_start()
    return user


def _calls(env: Environment) -> list[tuple[Any, ...]]:
    """The recorded rows so far as (endpoint, category, status, expected)."""
    return [(row[1], row[2], row[4], row[5]) for row in _rows(env)]


def test_a_token_user_logs_in_once_then_checks_who_it_is(environment: Build) -> None:
    env = environment(velro_out="")
    user = _signed_in(env, TokenAuthUser)
    user.who_am_i()
    user.who_am_i()
    rows = _rows(env)
    assert [(row[1], row[2], row[4], row[5]) for row in rows] == [
        ("POST /api/v1/auth/login", "setup", 200, 1),
        ("GET /api/v1/auth/me", "authentication", 200, 1),
        ("GET /api/v1/auth/me", "authentication", 200, 1),
    ]
    assert all(row[3] > 0 and row[6] is not None for row in rows)  # latency, st_app
    stats = env.stats.get("/api/v1/auth/me", "GET")
    assert (stats.num_requests, stats.num_failures) == (2, 0)


def test_authorization_users_get_the_decision_the_seed_implies(environment: Build) -> None:
    env = environment()
    user = _signed_in(env, AuthorizationUser)
    for _ in range(40):
        user.decide()
    rows = [row for row in _rows(env) if row[2] == "authorization"]
    assert len(rows) == 40
    assert {row[1] for row in rows} == {"GET /api/v1/authz/check", "GET /api/v1/projects/{id}"}
    assert all(row[5] == 1 for row in rows), rows
    # the denied relation answers 404 on a project read (no existence oracle)
    assert {row[4] for row in rows} <= {200, 404}


def test_abuse_users_expect_every_refusal_the_contract_promises(environment: Build) -> None:
    env = environment()
    user = _signed_in(env, AbuseUser)
    for _ in range(12):  # the account limit is 10 failed logins a minute: then 429
        user.wrong_password()
    user.bad_bearer()
    user.bad_service_key()
    rows = [row for row in _rows(env) if row[2] == "abuse"]
    statuses = [row[4] for row in rows]
    assert 401 in statuses[:12], statuses
    assert 429 in statuses[:12], statuses
    assert statuses[12:] == [401, 401]
    assert all(row[5] == 1 for row in rows), rows
    assert env.stats.total.num_failures == 0


def test_login_registration_and_service_key_users_send_what_they_are_for(
    environment: Build,
) -> None:
    env = environment()
    Runtime.of(env).recorder.enabled = True
    for user_class, task in (
        (LoginUser, "log_in"),
        (RegistrationUser, "register"),
        (ServiceKeyUser, "lookup"),
    ):
        user = _user(env, user_class)
        user.on_start()
        getattr(user, task)()
    assert _calls(env) == [
        ("POST /api/v1/auth/login", "login", 200, 1),
        ("POST /api/v1/auth/register", "registration", 201, 1),
        ("GET /api/v1/internal/users/{id}", "service_key", 200, 1),
    ]


def test_an_unexpected_answer_is_a_locust_failure_and_a_row_marked_unexpected(
    environment: Build, tmp_path: Path, service: tuple[str, Path]
) -> None:
    seed = json.loads(service[1].read_text())
    seed["password"] = "not-the-password"
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(seed), encoding="utf-8")
    env = environment(velro_fixtures=str(wrong), velro_out=str(tmp_path / "run"))
    user = _user(env, LoginUser)
    user.on_start()
    user.log_in()
    Runtime.of(env).recorder.flush("local")
    (row,) = SampleStore(tmp_path / "run").frame(SCHEMA.names).to_dict("records")
    assert (row["endpoint"], row["category"], row["status"], row["expected"]) == (
        "POST /api/v1/auth/login",
        "login",
        401,
        0,
    )
    errors = list(env.stats.errors.values())
    assert len(errors) == 1
    assert "expected 200, got 401 invalid_credentials" in str(errors[0].error)


def test_the_workload_weighs_this_environment_only(environment: Build, tmp_path: Path) -> None:
    env = environment()
    weights = {cls.__name__: (cls.weight, cls.fixed_count) for cls in env.user_classes}
    # registration has weight 0 in this workload: off; the others as the file says
    assert weights == {
        "AbuseUser": (0, 1),
        "AuthorizationUser": (1, 0),
        "LoginUser": (0, 1),
        "ServiceKeyUser": (1, 0),
        "TokenAuthUser": (3, 0),
    }
    assert all(issubclass(cls, VelroUser) for cls in env.user_classes)
    # the shared classes keep their own attributes, so another Environment starts afresh
    assert (TokenAuthUser.weight, LoginUser.fixed_count) == (1, 0)
    other = tmp_path / "other.toml"
    other.write_text("[users]\nregistration = { weight = 2 }\n", encoding="utf-8")
    second = environment(velro_workload=str(other))
    assert [(cls.__name__, cls.weight) for cls in second.user_classes] == [("RegistrationUser", 2)]
    assert {cls.__name__ for cls in env.user_classes} == set(weights)


def test_open_model_users_start_on_the_schedule_and_count_from_it(environment: Build) -> None:
    env = environment(velro_open_rate=20.0)
    runtime = Runtime.of(env)
    # logs in (setup, off the schedule), then sleeps to its first slot
    user = _signed_in(env, TokenAuthUser)
    for _ in range(5):
        user.who_am_i()  # runs in a slot greenlet: the user does not wait for the answer
        gevent.sleep(user.wait_time())  # as Locust's user waits: the slot greenlets run now
    runtime.in_flight.join(timeout=10)
    rows = [row for row in _rows(env) if row[2] == "authentication"]
    report = runtime.open_model.report()
    assert (report["started"], report["completed"], report["late"]) == (5, 5, 0), (
        report["max_start_lag_s"],
        report["per_second"],
    )
    # ts is each request's intended slot: one user's claims follow the 20/s schedule
    slots = [row[0] for row in rows]
    assert all(
        later - earlier == pytest.approx(0.05, abs=1e-6)
        for earlier, later in itertools.pairwise(sorted(slots))
    )
    assert sum(began for _, began in report["per_second"].values()) == 5


def test_an_environment_without_the_runtime_says_how_to_get_one() -> None:
    with pytest.raises(ScenarioConfigError, match=r"no velro runtime.*hooks\.setup"):
        Runtime.of(Environment(user_classes=[TokenAuthUser], events=Events()))


def test_a_refused_sign_in_is_retried_after_its_retry_after_not_on_the_next_task(
    environment: Build, live_server: Callable[..., Any], make_settings: Callable[..., Any]
) -> None:
    from tests.helpers import serve

    # a service with room for one sign-in at a time and a dear hash (about a second here),
    # whose one place a sign-in of another client holds while the user signs in
    settings = make_settings(
        argon2_time_cost=40, argon2_memory_kib=19456, hash_queue_max=1, hash_timeout_s=60.0
    )
    base = serve(live_server, settings).url
    holder = threading.Thread(
        target=httpx.post,
        args=(base + "/api/v1/auth/login",),
        kwargs={"json": {"email": "nobody@example.com", "password": "x" * 12}, "timeout": 60},
    )
    holder.start()
    metrics = base + "/api/v1/performance/metrics"
    deadline = time.time() + 10
    while httpx.get(metrics).json()["overload"]["hashing"]["pending"] < 1:
        assert time.time() < deadline, "the holding sign-in never started hashing"
        time.sleep(0.01)
    env = environment(velro_out="")
    Runtime.of(env).recorder.enabled = True
    user = type("Refused", (TokenAuthUser,), {"host": base})(env)
    env.velro_test_users.append(user)  # type: ignore[attr-defined]
    user.on_start()
    refused_at = time.time()
    for _ in range(3):  # tasks before Retry-After has passed send nothing
        user.who_am_i()
    holder.join()
    assert [(row[1], row[2], row[4]) for row in _rows(env)] == [
        ("POST /api/v1/auth/login", "setup", 503)
    ]
    # Retry-After: 1, spread over up to twice it
    assert 0.95 <= user.sign_in_after - refused_at <= 2.0
    time.sleep(max(0.0, user.sign_in_after - time.time()) + 0.01)
    user.who_am_i()  # the sign-in is tried again (the seed's accounts are not on this service)
    assert [(row[1], row[2]) for row in _rows(env)] == [("POST /api/v1/auth/login", "setup")]


def test_provisioning_sends_a_refused_sign_up_or_sign_in_again_after_its_retry_after(
    environment: Build, live_server: Callable[..., Any], make_settings: Callable[..., Any]
) -> None:
    from tests.helpers import serve
    from velro_perf.scenarios.api import BackendApi
    from velro_perf.scenarios.http import Channel, Transport
    from velro_perf.scenarios.provision import provision

    # a service with room for one hash at a time: of three sign-ups sent at once, two are
    # refused 503 with Retry-After, and so are two of the three sign-ins after them
    base = serve(live_server, make_settings(hash_queue_max=1)).url
    env = environment(velro_out="")
    runtime = Runtime.of(env)
    answers: Counter[tuple[str, str]] = Counter()

    def note(name: str, exception: Exception | None, **_: Any) -> None:
        answers[name, "ok" if exception is None else str(exception)] += 1

    env.events.request.add_listener(note)
    transport = Transport(base, env.events.request, concurrency=3)
    channel = Channel(transport, runtime.recorder, runtime.identity, category="setup")
    try:
        seed = provision(BackendApi(channel, runtime.api), runtime.identity, 3, 0, 0, None, 3)
    finally:
        transport.close()
    assert len({user.id for user in seed.users}) == 3
    assert answers["/api/v1/auth/register", "ok"] == 3, answers
    assert answers["/api/v1/auth/login", "ok"] == 3, answers
    refused = [key for key in answers if "got 503 overloaded" in key[1]]
    assert refused, answers  # sent again after Retry-After, not the end of the run


def test_users_started_in_one_spawn_batch_sign_in_spread_over_its_second(
    environment: Build,
) -> None:
    from locust.runners import STATE_RUNNING

    env = environment(velro_out="")
    Runtime.of(env).recorder.enabled = True
    assert env.runner is not None
    # what Locust's runner says once a batch is spawned, before the batch's users start
    env.runner.state = STATE_RUNNING
    users = [_user(env, TokenAuthUser) for _ in range(12)]
    began = time.time()
    gevent.joinall([gevent.spawn(user.on_start) for user in users], timeout=10)
    sign_ins = sorted(row[0] for row in _rows(env) if row[2] == "setup")
    assert len(sign_ins) == 12
    # not a burst at once: spread over (most of) the second after the batch
    assert sign_ins[-1] - sign_ins[0] > 0.3
    assert sign_ins[-1] - began < 1.0 + 0.5


def test_a_user_refreshes_its_token_before_it_expires_instead_of_signing_in_again(
    environment: Build,
) -> None:
    env = environment()
    user = _signed_in(env, TokenAuthUser)
    first_token, first_refresh = user.token, user.refresh_token
    assert first_refresh is not None
    user.token_expires = time.time() + 1  # about to expire: the next task renews it
    user.who_am_i()
    user.who_am_i()
    assert _calls(env) == [
        ("POST /api/v1/auth/login", "setup", 200, 1),
        ("POST /api/v1/auth/refresh", "refresh", 200, 1),
        ("GET /api/v1/auth/me", "authentication", 200, 1),
        ("GET /api/v1/auth/me", "authentication", 200, 1),
    ]
    # a new pair: the refresh token sent was consumed and a new one kept (rotation)
    assert user.token != first_token
    assert user.refresh_token not in (None, first_refresh)


def test_the_abuse_user_replays_a_consumed_refresh_token_then_its_familys_newest(
    environment: Build,
) -> None:
    env = environment()
    user = _signed_in(env, AbuseUser)
    _rows(env)
    user.replay_refresh()
    assert _calls(env) == [
        ("POST /api/v1/auth/login [replay probe]", "abuse", 200, 1),
        ("POST /api/v1/auth/refresh [replay probe]", "abuse", 200, 1),
        ("POST /api/v1/auth/refresh [replayed refresh]", "abuse", 401, 1),
        ("POST /api/v1/auth/refresh [replayed refresh]", "abuse", 401, 1),
    ]
    assert env.stats.total.num_failures == 0

"""Per-request checks: a service key cached and uncached, an authorization decision cold and warm.

They run on the app's own services (``build_services``) over a SQLite file of their own,
seeded here through the schema: a project owner, a user holding a direct ``viewer`` grant on
each of PROJECTS projects, and one service key.

- Service keys: uncached is what the service does when the revocation channel is not live
  (every check is one indexed lookup through the executor); cached is the warm path, which
  needs the Redis subscription to be live (``velro.service_keys``), hence Redis.
- Authorization, warm: the same (user, project) again, answered by L1. Cold: a project this
  process never decided before, so the version cache, L1 and L3 all miss and the role query
  runs; no Redis here, so cold is L1 -> L3 -> database. Each cold round takes the next
  project, so rounds never exceed PROJECTS.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from velro.authz import Authorizer
from velro.db import Database
from velro.db.schema import grants, projects, users
from velro.service_keys import ServiceKeys, create_key
from velro.services import Services, build_services

PROJECTS = 400


def _seed(url: str) -> tuple[str, list[str]]:
    """An owner, a viewer with a grant on every project; (viewer id, project ids)."""
    db = Database.instance(url)
    db.create_all()
    now = datetime.now(UTC)
    owner, viewer = str(uuid.uuid4()), str(uuid.uuid4())
    project_ids = [str(uuid.uuid4()) for _ in range(PROJECTS)]
    with db.begin() as conn:
        for uid in (owner, viewer):
            conn.execute(
                users.insert().values(
                    id=uid,
                    email=f"{uid}@example.com",
                    full_name=None,
                    password_hash="not-a-hash",
                    token_version=0,
                    created_at=now,
                )
            )
        conn.execute(
            projects.insert(),
            [{"id": p, "name": f"p{n}", "owner_id": owner, "created_at": now} for n, p in
             enumerate(project_ids)],
        )  # fmt: skip
        conn.execute(
            grants.insert(),
            [
                {"project_id": p, "subject_type": "user", "subject_id": viewer, "role": "viewer"}
                for p in project_ids
            ],
        )
    return viewer, project_ids


@pytest.fixture(scope="module")
def decisions_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('decisions') / 'velro.db'}"


@pytest.fixture(scope="module")
def seeded(decisions_url: str) -> tuple[str, list[str]]:
    return _seed(decisions_url)


@pytest.fixture(scope="module")
def make_services(
    run: Any, make_settings: Callable[..., Any], decisions_url: str
) -> Iterator[Callable[..., Services]]:
    built: list[Services] = []

    def make(**overrides: Any) -> Services:
        svc = build_services(make_settings(database_url=decisions_url, **overrides))
        built.append(svc)
        return svc

    yield make
    for svc in built:
        run(svc.close())


@pytest.fixture(scope="module")
def service_key(run: Any, seeded: Any, make_services: Callable[..., Services]) -> str:
    svc = make_services()
    _, key = run(svc.db_call(create_key, "bench"))
    return str(key)


# -- service keys ----------------------------------------------------------------------------


def test_service_key_uncached(
    benchmark: Any, run: Any, make_services: Callable[..., Services], service_key: str
) -> None:
    """Every check reads the database (no live revocation channel: the cache is not trusted)."""
    svc = make_services()
    keys = ServiceKeys(svc.settings)
    assert not keys.live
    benchmark.extra_info.update(anchor=None, tier="service_key")
    key_id = benchmark(lambda: run(keys.check(svc, service_key)))
    assert key_id is not None
    assert keys.hits == 0


@pytest.mark.redis
def test_service_key_cached(
    benchmark: Any,
    run: Any,
    make_services: Callable[..., Services],
    service_key: str,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """A warm check: answered from the per-process cache while the channel is live."""
    svc = make_services(redis_url=redis_url, redis_prefix=redis_prefix)
    keys = ServiceKeys(svc.settings)
    run(keys.start())
    try:
        assert run(keys.wait_live(5.0)), "the revocation channel did not come up"
        assert run(keys.check(svc, service_key)) is not None  # the one database read
        misses = keys.misses
        benchmark.extra_info.update(anchor="test_service_key_uncached", tier="service_key")
        key_id = benchmark(lambda: run(keys.check(svc, service_key)))
        assert key_id is not None
        assert keys.misses == misses  # every timed check was a cache hit
    finally:
        run(keys.close())


# -- authorization ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authorizer(make_services: Callable[..., Services], seeded: Any) -> Authorizer:
    return Authorizer(make_services())


def test_authz_decision_warm(
    benchmark: Any, run: Any, authorizer: Authorizer, seeded: tuple[str, list[str]]
) -> None:
    viewer, project_ids = seeded
    first = run(authorizer.decide(viewer, project_ids[0]))
    assert first.role == "viewer"
    run(authorizer.svc.cache.flush())
    benchmark.extra_info.update(anchor="test_authz_decision_cold", tier="L1")
    decision = benchmark(lambda: run(authorizer.decide(viewer, project_ids[0])))
    assert (decision.role, decision.source) == ("viewer", "L1")
    assert decision.allows("read")
    assert not decision.allows("write")


def test_authz_decision_cold(
    benchmark: Any,
    run: Any,
    authorizer: Authorizer,
    seeded: tuple[str, list[str]],
    rounds: Callable[[int], int],
) -> None:
    viewer, project_ids = seeded
    fresh = iter(project_ids[1:])  # project 0 is the warm benchmark's

    def next_project() -> tuple[tuple[str], dict[str, Any]]:
        run(authorizer.svc.cache.flush())  # the previous round's write-back, untimed
        return (next(fresh),), {}

    n = rounds(min(200, PROJECTS - 1))
    benchmark.extra_info.update(anchor=None, tier="miss")
    decision = benchmark.pedantic(
        lambda project: run(authorizer.decide(viewer, project)), setup=next_project, rounds=n
    )
    run(authorizer.svc.cache.flush())
    assert (decision.role, decision.source) == ("viewer", "db")

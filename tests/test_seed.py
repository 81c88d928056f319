"""The seeder: counts, one hash for all, fixtures the decision function agrees with, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from velro.authz import load_role
from velro.commands.seed import hash_once
from velro.db import Database
from velro.db.schema import grants, projects, service_keys, team_members, teams, users
from velro.seed import EMAIL_DOMAIN, AlreadySeeded, SeedResult, make_plan, seed_database
from velro.settings import Settings

PASSWORD = "fixture-password-1"


def _count(db: Database, table: Any) -> int:
    with db.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _seed(db: Database, settings: Settings, **kw: Any) -> SeedResult:
    db.create_all()
    return seed_database(
        db,
        users_n=kw.pop("users_n", 2000),
        teams_n=kw.pop("teams_n", 200),
        projects_n=kw.pop("projects_n", 3000),
        password=PASSWORD,
        password_hash=hash_once(settings, PASSWORD),
        **kw,
    )


def _check_counts_and_fixtures(db: Database, result: SeedResult) -> None:
    assert (result.users, result.teams, result.projects) == (2000, 200, 3000)
    assert _count(db, users) == 2000
    assert _count(db, teams) == 200
    assert _count(db, projects) == 3000
    assert _count(db, grants) == result.grants > 0
    memberships = _count(db, team_members)
    assert memberships == result.memberships
    assert 2000 <= memberships <= 6000  # every user in one to three teams
    with db.begin() as conn:
        hashes = conn.execute(select(func.count(func.distinct(users.c.password_hash)))).scalar()
        assert hashes == 1  # hashed once, reused
        assert conn.execute(select(func.count()).select_from(service_keys)).scalar() == 1

    fixtures = result.fixtures
    assert fixtures["password"] == PASSWORD
    assert fixtures["service_key"] == result.service_key
    sample = fixtures["users"]
    assert 0 < len(sample) <= 2000
    assert all(u["email"].endswith(f"@{EMAIL_DOMAIN}") for u in sample)
    complete = [u for u in sample if all(u[k] for k in ("own", "shared", "team", "denied"))]
    assert len(complete) >= len(sample) * 0.9, "the mix should give most users every list"
    # each list is what the decision function says, for a slice of the sample
    with db.begin() as conn:
        for user in sample[:: max(1, len(sample) // 60)]:
            for pid in user["own"]:
                assert load_role(conn, user["id"], pid)["role"] == "owner"
            for pid in user["shared"] + user["team"]:
                assert load_role(conn, user["id"], pid)["role"] is not None
            for pid in user["denied"]:
                assert load_role(conn, user["id"], pid) == {"role": None, "project": None}
            owned = {
                row.id
                for row in conn.execute(
                    select(projects.c.id).where(projects.c.owner_id == user["id"])
                )
            }
            assert set(user["own"]) <= owned
            direct = {
                row.project_id
                for row in conn.execute(
                    select(grants.c.project_id).where(
                        grants.c.subject_type == "user", grants.c.subject_id == user["id"]
                    )
                )
            }
            assert set(user["shared"]) <= direct
            assert not set(user["team"]) & (direct | owned)


def test_a_seed_of_2000_users_has_the_counts_and_fixtures_it_claims(
    make_settings: Callable[..., Settings], live_server: Callable[..., Any]
) -> None:
    settings = make_settings()
    db = Database(settings.database_url)
    result = _seed(db, settings)
    _check_counts_and_fixtures(db, result)

    with pytest.raises(AlreadySeeded, match="--reset"):
        _seed(db, settings)
    again = _seed(db, settings, reset=True)  # replaces the seed, does not add to it
    assert _count(db, users) == 2000
    assert again.fixtures["users"][0]["id"] != result.fixtures["users"][0]["id"]
    db.close()

    # a seeded user logs in with the fixture password; the seeded key reads users
    server = live_server(settings)
    user = again.fixtures["users"][0]
    with httpx.Client(base_url=server.url + "/api/v1") as client:
        r = client.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        r = client.get(f"/projects/{user['own'][0]}", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 200
        r = client.get(
            f"/internal/users/{user['id']}", headers={"X-Service-Key": again.service_key}
        )
        assert r.status_code == 200
        assert r.json()["email"] == user["email"]


@pytest.mark.postgres
def test_a_seed_of_2000_users_on_postgresql(
    make_settings: Callable[..., Settings], postgres_url: str
) -> None:
    settings = make_settings(database_url=postgres_url)
    db = Database(postgres_url)
    _check_counts_and_fixtures(db, _seed(db, settings))
    db.close()


def test_a_small_mix_still_gives_valid_lists() -> None:
    plan = make_plan(3, 1, 2)
    assert len(plan.user_ids) == 3
    assert plan.project_owner == [0, 1]
    assert all(len(m) == 1 for m in plan.memberships)
    with pytest.raises(Exception, match="--users is 0"):
        make_plan(0, 1, 1)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "velro", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_velro_seed_writes_fixtures_and_refuses_to_seed_twice(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VELRO_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "VELRO_ARGON2_MEMORY_KIB": "1024",
        "VELRO_ARGON2_TIME_COST": "1",
    }
    out = tmp_path / "fixtures.json"
    args = ["seed", "--users", "40", "--teams", "8", "--projects", "80", "--out", str(out)]
    first = _cli(args, env)
    assert first.returncode == 0, first.stderr
    assert "seeded 40 users" in first.stderr
    data = json.loads(out.read_text())
    assert data["password"] == "velro-seed-password"
    assert data["service_key"]
    assert len(data["users"]) == 40
    second = _cli(args, env)
    assert second.returncode == 2
    assert "already holds a seed" in second.stderr
    assert _cli([*args, "--reset"], env).returncode == 0
    short = _cli([*args, "--reset", "--password", "short"], env)
    assert short.returncode == 2
    assert "--password" in short.stderr
    helped = _cli(["seed", "--help"], env)
    assert "hashed ONCE with argon2id" in helped.stdout

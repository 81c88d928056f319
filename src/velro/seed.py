"""The seeder: a database full of users, teams, projects and grants, for a load test.

``seed_database`` fills an empty database in one transaction and returns the fixtures the
load scenarios read (``scenarios/seed.py``)::

    {"password": "...", "service_key": "...",
     "users": [{"id", "email", "own": [..], "shared": [..], "team": [..], "denied": [..]}]}

for a sample of at most ``fixture_users`` users (not all of them: the file travels to every
load-generator worker).

The mix, drawn from a seeded ``random.Random`` so that its shape is reproducible (the ids are
fresh each time):

- users ``user{n}@seed.velro.test``, all with one password, hashed ONCE with argon2id and the
  hash reused for every row: 100,000 hashes at the OWASP minimum would take about half an
  hour of one core, and a load test needs known credentials, not distinct salts;
- project ``j`` is owned by user ``j mod users``, so every user owns some when there are at
  least as many projects as users;
- half the projects are shared directly with one or two other users, dealt round the users
  in turn (viewer 60 %, editor 35 %, owner 5 %), three in ten with one team (viewer or editor);
- every user is in one to three teams; a team's owner is not a member unless drawn as one
  (as in the service: owning a team does not put you in it).

Rows go in with ``executemany`` in chunks of ``CHUNK`` rows: 100,000 users, their teams,
projects and grants seed in well under a minute on SQLite and PostgreSQL (see the README for
the measured figures).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, func, or_, select

from velro.db import Database
from velro.db.schema import grants, projects, service_keys, team_members, teams, users
from velro.errors import VelroError

__all__ = [
    "CHUNK",
    "DEFAULT_PASSWORD",
    "EMAIL_DOMAIN",
    "SEED_KEY_NAME",
    "AlreadySeeded",
    "Plan",
    "SeedResult",
    "make_plan",
    "reset_seed",
    "seed_database",
]

EMAIL_DOMAIN = "seed.velro.test"
DEFAULT_PASSWORD = "velro-seed-password"  # noqa: S105 - a load-test fixture, printed in the fixtures file
SEED_KEY_NAME = "velro-seed"
CHUNK = 5_000
# per user and list in the fixtures file: enough variety, a small file
LIST_CAP = 20

_USER_ROLES = (("viewer", 60), ("editor", 35), ("owner", 5))
_TEAM_ROLES = (("viewer", 70), ("editor", 30))


class AlreadySeeded(VelroError):
    """The database holds a seed already."""


@dataclass(slots=True)
class Plan:
    """Who is who, by index: user ``i``, team ``k``, project ``j``; ids beside them."""

    user_ids: list[str]
    team_ids: list[str]
    project_ids: list[str]
    team_owner: list[int]
    memberships: list[list[int]]  # per user: team indexes
    project_owner: list[int]
    user_grants: list[tuple[int, int, str]]  # (project, user, role)
    team_grants: list[tuple[int, int, str]]  # (project, team, role)
    team_projects: list[list[int]] = field(default_factory=list)  # per team
    shared_with: list[list[int]] = field(default_factory=list)  # per user, direct grants


def _role(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    return rng.choices([r for r, _ in table], [w for _, w in table])[0]


def _ids(n: int) -> list[str]:
    # Fresh random ids every time, never drawn from the seeded generator: a reseeded database
    # must not reuse ids that a shared Redis (L2) may still hold decisions for.
    return [str(uuid.uuid4()) for _ in range(n)]


def make_plan(users_n: int, teams_n: int, projects_n: int, *, random_seed: int = 0) -> Plan:
    for name, value, least in (
        ("users", users_n, 1),
        ("teams", teams_n, 0),
        ("projects", projects_n, 0),
    ):
        if value < least:
            raise VelroError(f"--{name} is {value}; give {least} or more")
    rng = random.Random(random_seed)
    team_owner = [rng.randrange(users_n) for _ in range(teams_n)]
    memberships: list[list[int]] = []
    for _ in range(users_n):
        if teams_n == 0:
            memberships.append([])
            continue
        count = min(teams_n, rng.choice((1, 1, 2, 2, 3)))
        memberships.append(rng.sample(range(teams_n), count))
    project_owner = [j % users_n for j in range(projects_n)]
    user_grants: list[tuple[int, int, str]] = []
    team_grants: list[tuple[int, int, str]] = []
    # Direct grantees are dealt round a shuffled ring of users rather than drawn at random,
    # so that every user gets a direct share as soon as there are as many grants as users
    # (random draws leave a third of them without one).
    ring = list(range(users_n))
    rng.shuffle(ring)
    dealt = 0
    for j in range(projects_n):
        owner = project_owner[j]
        if users_n > 1 and rng.random() < 0.5:
            grantees: set[int] = set()
            for _ in range(rng.choice((1, 2))):
                grantee = ring[dealt % users_n]
                dealt += 1
                if grantee == owner:
                    grantee = ring[dealt % users_n]
                    dealt += 1
                grantees.add(grantee)
            grantees.discard(owner)
            user_grants += [(j, i, _role(rng, _USER_ROLES)) for i in sorted(grantees)]
        if teams_n and rng.random() < 0.3:
            team_grants.append((j, rng.randrange(teams_n), _role(rng, _TEAM_ROLES)))
    plan = Plan(
        user_ids=_ids(users_n),
        team_ids=_ids(teams_n),
        project_ids=_ids(projects_n),
        team_owner=team_owner,
        memberships=memberships,
        project_owner=project_owner,
        user_grants=user_grants,
        team_grants=team_grants,
    )
    plan.team_projects = [[] for _ in range(teams_n)]
    for j, k, _ in team_grants:
        plan.team_projects[k].append(j)
    plan.shared_with = [[] for _ in range(users_n)]
    for j, i, _ in user_grants:
        plan.shared_with[i].append(j)
    return plan


@dataclass(frozen=True, slots=True)
class SeedResult:
    users: int
    teams: int
    memberships: int
    projects: int
    grants: int
    service_key: str
    fixtures: dict[str, Any]


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _insert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    for chunk in _chunks(rows):
        conn.execute(table.insert(), list(chunk))  # a list of rows: executemany
    return len(rows)


def _seeded_users(conn: Connection) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(users).where(users.c.email.like(f"%@{EMAIL_DOMAIN}"))
        ).scalar_one()
    )


def reset_seed(conn: Connection) -> int:
    """Delete a previous seed (its users and all they own, share and belong to); how many users.

    Meant for a stopped service: a running one may answer from its caches until they expire.
    """
    seeded = select(users.c.id).where(users.c.email.like(f"%@{EMAIL_DOMAIN}")).scalar_subquery()
    seeded_teams = select(teams.c.id).where(teams.c.owner_id.in_(seeded)).scalar_subquery()
    seeded_projects = select(projects.c.id).where(projects.c.owner_id.in_(seeded)).scalar_subquery()
    count = _seeded_users(conn)
    conn.execute(
        delete(grants).where(
            or_(
                grants.c.project_id.in_(seeded_projects),
                (grants.c.subject_type == "user") & grants.c.subject_id.in_(seeded),
                (grants.c.subject_type == "team") & grants.c.subject_id.in_(seeded_teams),
            )
        )
    )
    conn.execute(
        delete(team_members).where(
            or_(team_members.c.team_id.in_(seeded_teams), team_members.c.user_id.in_(seeded))
        )
    )
    conn.execute(delete(teams).where(teams.c.owner_id.in_(seeded)))
    conn.execute(delete(projects).where(projects.c.owner_id.in_(seeded)))
    conn.execute(delete(service_keys).where(service_keys.c.name == SEED_KEY_NAME))
    conn.execute(delete(users).where(users.c.email.like(f"%@{EMAIL_DOMAIN}")))
    return count


def _create_service_key(conn: Connection) -> str:
    """A service key for the load scenarios, made by the service's own ``create_key``."""
    from velro.service_keys import create_key

    _, key = create_key(conn, SEED_KEY_NAME)
    return key


def _user_rows(plan: Plan, password_hash: str, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": uid,
            "email": f"user{n + 1}@{EMAIL_DOMAIN}",
            "full_name": f"Seed User {n + 1}",
            "password_hash": password_hash,  # the one hash, reused (see the module docstring)
            "token_version": 0,
            "created_at": now,
        }
        for n, uid in enumerate(plan.user_ids)
    ]


def _owned_rows(
    plan: Plan, ids: list[str], owners: list[int], label: str, now: datetime
) -> list[dict[str, Any]]:
    """Teams or projects: ``Seed {label} n``, owned by the user the plan names."""
    return [
        {
            "id": oid,
            "name": f"Seed {label} {n + 1}",
            "owner_id": plan.user_ids[owners[n]],
            "created_at": now,
        }
        for n, oid in enumerate(ids)
    ]


def _membership_rows(plan: Plan) -> list[dict[str, Any]]:
    return [
        {"team_id": plan.team_ids[k], "user_id": plan.user_ids[i]}
        for i, member_of in enumerate(plan.memberships)
        for k in member_of
    ]


def _grant_rows(
    plan: Plan, granted: list[tuple[int, int, str]], subject_type: str, subject_ids: list[str]
) -> list[dict[str, Any]]:
    """Grants ``(project, subject, role)`` to users or teams, as rows."""
    return [
        {
            "project_id": plan.project_ids[j],
            "subject_type": subject_type,
            "subject_id": subject_ids[s],
            "role": role,
        }
        for j, s, role in granted
    ]


def _write_plan(conn: Connection, plan: Plan, password_hash: str, now: datetime) -> dict[str, int]:
    counts = {"users": _insert(conn, users, _user_rows(plan, password_hash, now))}
    counts["teams"] = _insert(
        conn, teams, _owned_rows(plan, plan.team_ids, plan.team_owner, "team", now)
    )
    counts["memberships"] = _insert(conn, team_members, _membership_rows(plan))
    counts["projects"] = _insert(
        conn, projects, _owned_rows(plan, plan.project_ids, plan.project_owner, "project", now)
    )
    grant_rows = _grant_rows(plan, plan.user_grants, "user", plan.user_ids)
    grant_rows += _grant_rows(plan, plan.team_grants, "team", plan.team_ids)
    counts["grants"] = _insert(conn, grants, grant_rows)
    return counts


def fixtures_for(
    plan: Plan, password: str, service_key: str, *, sample: int, random_seed: int = 0
) -> dict[str, Any]:
    """The fixtures structure for at most ``sample`` users, those with every list first."""
    rng = random.Random(random_seed + 1)
    users_n = len(plan.user_ids)
    projects_n = len(plan.project_ids)
    own: list[list[int]] = [[] for _ in range(users_n)]
    for j, i in enumerate(plan.project_owner):
        own[i].append(j)

    def relations(i: int) -> dict[str, list[int]]:
        mine = own[i]
        shared = [j for j in plan.shared_with[i] if j not in mine]
        taken = set(mine) | set(shared)
        via_team = sorted({j for k in plan.memberships[i] for j in plan.team_projects[k]} - taken)
        readable = taken | set(via_team)
        denied: list[int] = []
        if len(readable) < projects_n:
            for _ in range(LIST_CAP * 10):
                j = rng.randrange(projects_n)
                if j not in readable and j not in denied:
                    denied.append(j)
                    if len(denied) == LIST_CAP:
                        break
        return {"own": mine, "shared": shared, "team": via_team, "denied": denied}

    # Users with all four lists first, then the rest, until the sample is full. Only a
    # bounded number of candidates is examined, so 100,000 users stay cheap.
    order = list(range(users_n))
    rng.shuffle(order)
    complete: list[tuple[int, dict[str, list[int]]]] = []
    partial: list[tuple[int, dict[str, list[int]]]] = []
    for i in order[: sample * 5]:
        rel = relations(i)
        (complete if all(rel.values()) else partial).append((i, rel))
        if len(complete) >= sample:
            break
    chosen = (complete + partial)[:sample]
    chosen.sort(key=lambda item: item[0])
    return {
        "password": password,
        "service_key": service_key,
        "users": [
            {
                "id": plan.user_ids[i],
                "email": f"user{i + 1}@{EMAIL_DOMAIN}",
                **{name: [plan.project_ids[j] for j in js[:LIST_CAP]] for name, js in rel.items()},
            }
            for i, rel in chosen
        ],
    }


def seed_database(
    db: Database,
    *,
    users_n: int,
    teams_n: int,
    projects_n: int,
    password: str,
    password_hash: str,
    reset: bool = False,
    fixture_users: int = 2_000,
    random_seed: int = 0,
) -> SeedResult:
    """Seed ``db`` in one transaction (all or nothing); ``AlreadySeeded`` unless ``reset``."""
    plan = make_plan(users_n, teams_n, projects_n, random_seed=random_seed)
    now = datetime.now(UTC)
    with db.begin() as conn:
        if reset:
            reset_seed(conn)
        else:
            existing = _seeded_users(conn)
            if existing:
                raise AlreadySeeded(
                    f"the database already holds a seed ({existing} users @{EMAIL_DOMAIN}); "
                    "give --reset to replace it, or seed a fresh database"
                )
        counts = _write_plan(conn, plan, password_hash, now)
        key = _create_service_key(conn)
    return SeedResult(
        users=counts["users"],
        teams=counts["teams"],
        memberships=counts["memberships"],
        projects=counts["projects"],
        grants=counts["grants"],
        service_key=key,
        fixtures=fixtures_for(plan, password, key, sample=fixture_users, random_seed=random_seed),
    )

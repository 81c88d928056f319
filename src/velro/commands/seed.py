"""``velro seed``: fill the configured database for a load test and write its fixtures file."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from velro.db import Database
from velro.errors import VelroError
from velro.settings import Settings

__all__ = ["register"]

_HELP = """\
Create USERS users (user1@seed.velro.test, ...), TEAMS teams, PROJECTS projects and a
realistic mix of grants, plus one service key, in one transaction. Every seeded user has the
same password (--password), hashed ONCE with argon2id at the configured parameters
(VELRO_ARGON2_*) and that one hash reused for every user: a load test needs known
credentials, and 100,000 separate hashes would take about half an hour of one core.
--out writes the fixtures JSON the load scenarios read (password, service key, and for a
sample of at most --fixture-users users their own, shared, team-shared and denied projects).
A database that holds a seed already is refused unless --reset is given.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "seed",
        help="fill the database for a load test",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--users", type=int, required=True, help="number of users")
    p.add_argument("--teams", type=int, required=True, help="number of teams")
    p.add_argument("--projects", type=int, required=True, help="number of projects")
    p.add_argument("--out", type=Path, help="write the fixtures JSON here")
    p.add_argument(
        "--password",
        default=None,
        help="the seeded users' password, at least 8 characters (default: velro-seed-password)",
    )
    p.add_argument("--reset", action="store_true", help="delete a previous seed first")
    p.add_argument(
        "--fixture-users", type=int, default=2000, help="users in the fixtures file (at most)"
    )
    p.add_argument("--random-seed", type=int, default=0, help="seed of the mix (default 0)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from velro.seed import DEFAULT_PASSWORD, seed_database

    password: str = args.password if args.password is not None else DEFAULT_PASSWORD
    if not 8 <= len(password) <= 128:
        raise VelroError(
            f"--password is {len(password)} characters; give 8 to 128 (the contract's rule)"
        )
    if args.fixture_users < 1:
        raise VelroError(f"--fixture-users is {args.fixture_users}; give 1 or more")
    settings = Settings.from_env()
    started = time.perf_counter()
    password_hash = hash_once(settings, password)
    db = Database(settings.database_url, timeout_s=max(settings.db_timeout_s, 300.0))
    try:
        db.create_all()
        result = seed_database(
            db,
            users_n=args.users,
            teams_n=args.teams,
            projects_n=args.projects,
            password=password,
            password_hash=password_hash,
            reset=args.reset,
            fixture_users=args.fixture_users,
            random_seed=args.random_seed,
        )
    finally:
        db.close()
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result.fixtures, indent=1) + "\n", encoding="utf-8")
    else:
        # no fixtures file to carry it: the key is printed once, as `velro keys create` does
        print(f"service key: {result.service_key}")
    elapsed = time.perf_counter() - started
    print(
        f"velro: seeded {result.users} users, {result.teams} teams "
        f"({result.memberships} memberships), {result.projects} projects, "
        f"{result.grants} grants and one service key in {elapsed:.1f} s"
        + (
            f"; fixtures for {len(result.fixtures['users'])} users in {args.out}"
            if args.out
            else ""
        ),
        file=sys.stderr,
    )
    return 0


def hash_once(settings: Settings, password: str) -> str:
    """The one argon2id hash every seeded user gets, made with the service's own hasher."""
    from velro.executor import Executor
    from velro.passwords import Passwords

    executor = Executor(1, {"hash": settings.hash_timeout_s})
    try:
        return Passwords(settings, executor).hash_sync(password)
    finally:
        executor.shutdown()

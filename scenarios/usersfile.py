"""A users file: the accounts a load signs in as, created beforehand (`--users-file`).

Many providers have no open sign-up: their load test signs in as test users made by an
administrator. The file is CSV with a header row, columns `email` and `password`, and an
optional `id` (the user's id as the backend answers it: service lookups need it). The users
become the seed, spread over the simulated users as provisioned ones are.
"""

from __future__ import annotations

import csv
from pathlib import Path

from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.seed import Seed, SeedUser

__all__ = ["REQUIRED_COLUMNS", "load_users_file", "users_seed"]

REQUIRED_COLUMNS = ("email", "password")


def load_users_file(
    path: str | Path, needed: int = 1, needed_by: str = "the shape needs {n} (its seed_users)"
) -> tuple[SeedUser, ...]:
    """The users of a users file; ScenarioConfigError names the problem and the fix when the
    file is missing, lacks a column, has an empty row or has fewer than `needed` users."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ScenarioConfigError(
            f"users file {str(p)!r} does not exist; give a CSV file with a header row "
            "email,password[,id] and one user a line"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioConfigError(
            f"users file {str(p)!r} cannot be read ({exc}); check it"
        ) from None
    reader = csv.DictReader(text.splitlines())
    columns = [name.strip().lower() for name in reader.fieldnames or []]
    if not columns:
        raise ScenarioConfigError(
            f"users file {str(p)!r} is empty; give a header row email,password[,id] and one "
            "user a line"
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ScenarioConfigError(
            f"users file {str(p)!r} has columns {columns}, no {' or '.join(missing)}; give a "
            "header row email,password[,id]"
        )
    reader.fieldnames = columns
    users = []
    for line, row in enumerate(reader, start=2):
        email, password = (row.get("email") or "").strip(), row.get("password") or ""
        if not email or not password:
            raise ScenarioConfigError(
                f"users file {str(p)!r} line {line} has no {'email' if not email else 'password'}; "
                "give both on every line"
            )
        users.append(SeedUser(id=(row.get("id") or "").strip(), email=email, password=password))
    if len(users) < needed:
        raise ScenarioConfigError(
            f"users file {str(p)!r} has {len(users)} users and {needed_by.format(n=needed)}; "
            "add users to the file"
            + (" or run a shape with fewer seed_users" if "seed_users" in needed_by else "")
        )
    return tuple(users)


def users_seed(path: str | Path, needed: int, service_key: str | None) -> Seed:
    """The seed a users file makes: its users, each with its password; no projects."""
    return Seed(password="", service_key=service_key, users=load_users_file(path, needed))

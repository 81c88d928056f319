"""One refresh-token rotation on each database: the one indexed read and one write transaction.

The PRD's own budget for token refresh (p95 < 100 ms, beside the PRD's rows) says why a
rotation must stay one indexed read and one write; this measures that unit of work as a worker
runs it (``Database.call(refresh.rotate_token, ...)``), without the executor hop
(``test_executor.py``) or HTTP. Each round rotates the chain's newest token, so every round
takes the success path: the read, the conditional UPDATE and the INSERT, committed.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from velro import refresh
from velro.db import Database
from velro.users import insert_user

TTL_S = 600


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest) -> Database:
    url = request.getfixturevalue(f"{request.param}_url")
    return Database.instance(url)


def test_refresh_rotation(benchmark: Any, database: Database) -> None:
    """Consume the newest token of a family and store its successor, in one transaction."""
    user = database.call(insert_user, f"bench-{uuid.uuid4().hex}@example.com", "x", None)
    counter = itertools.count()

    def sha(n: int) -> str:
        return hashlib.sha256(f"{user['id']}:{n}".encode()).hexdigest()

    current = sha(next(counter))
    database.call(
        refresh.insert_token, current, str(uuid.uuid4()), user["id"], datetime.now(UTC), TTL_S
    )
    rotated = 0

    def rotate() -> object:
        nonlocal current, rotated
        successor = sha(next(counter))
        outcome = database.call(refresh.rotate_token, current, successor, datetime.now(UTC), TTL_S)
        current = successor
        rotated += 1
        return outcome

    benchmark.extra_info.update(anchor=None, tier="refresh")
    outcome = benchmark(rotate)
    assert isinstance(outcome, refresh.Rotated)
    # every round won its rotation: the chain's newest token is live, its parent consumed
    newest = database.call(refresh.read_token, current)
    assert newest is not None
    assert not newest.consumed
    assert not newest.revoked
    assert rotated >= 1

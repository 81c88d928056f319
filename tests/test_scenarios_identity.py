"""Registration emails never collide, within a process or across worker processes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from velro_perf.scenarios.checks import _REQUEST_ID
from velro_perf.scenarios.identity import IdentitySource

ROOT = Path(__file__).resolve().parent.parent
EMAIL = re.compile(r"^[a-z]+-[0-9a-f]+-\d+-[0-9a-f]{6}@example\.com$")


def test_emails_of_one_process_are_unique_and_well_formed() -> None:
    source = IdentitySource()
    emails = [source.email() for _ in range(5000)]
    assert len(set(emails)) == len(emails)
    assert all(EMAIL.match(email) and len(email) <= 254 for email in emails)


def test_two_processes_with_the_same_pid_still_differ() -> None:
    # a pid is reused across machines and runs; the random part of the tag keeps them apart
    first, second = IdentitySource(pid=4242), IdentitySource(pid=4242)
    assert first.tag != second.tag
    assert not {first.email() for _ in range(500)} & {second.email() for _ in range(500)}


def test_emails_from_separate_worker_processes_do_not_collide() -> None:
    script = (
        "from velro_perf.scenarios.identity import IdentitySource\n"
        "identity = IdentitySource()\n"
        "for _ in range(2000): print(identity.email())"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
        for _ in range(3)
    ]
    emails = [line for output in outputs for line in output.splitlines()]
    assert len(emails) == 6000
    assert len(set(emails)) == 6000


def test_request_ids_are_ones_the_server_must_echo() -> None:
    source = IdentitySource()
    ids = [source.request_id() for _ in range(100)]
    assert len(set(ids)) == 100
    assert all(_REQUEST_ID.match(request_id) for request_id in ids)

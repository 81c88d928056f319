"""Users files (`--users-file`): existing users a load signs in as; a file that cannot serve
the shape is exit 2 naming the fix, before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.seed import parse_seed
from velro_perf.scenarios.usersfile import load_users_file, users_seed


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "users.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_users_come_with_their_own_passwords_and_optional_ids(tmp_path: Path) -> None:
    path = _file(tmp_path, "Email,Password,id\na@example.com,pw a,7\nb@example.com,pw-b,\n")
    users = load_users_file(path, needed=2)
    assert [(u.email, u.password, u.id) for u in users] == [
        ("a@example.com", "pw a", "7"),
        ("b@example.com", "pw-b", ""),
    ]
    # the seed travels to Locust workers as JSON: the passwords go with it
    seed = users_seed(path, 2, None)
    assert parse_seed(seed.to_json()).users == users


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "is empty; give a header row email,password[,id]"),
        ("email,id\na@example.com,1\n", "no password; give a header row email,password[,id]"),
        ("email,password\na@example.com,\n", "line 2 has no password"),
        ("email,password\na@example.com,pw\n", "has 1 users and the shape needs 2"),
    ],
)
def test_a_users_file_that_cannot_serve_names_the_fix(
    tmp_path: Path, text: str, needle: str
) -> None:
    with pytest.raises(ScenarioConfigError) as caught:
        load_users_file(_file(tmp_path, text), needed=2)
    assert needle in str(caught.value)


def test_velro_perf_run_refuses_a_short_users_file_with_exit_2(tmp_path: Path) -> None:
    path = _file(tmp_path, "email,password\na@example.com,pw\n")
    done = subprocess.run(
        [sys.executable, "-m", "velro_perf", "run", "--shape", "smoke",
         "--target", "http://127.0.0.1:9", "--users-file", str(path)],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "has 1 users and the shape needs 60 (its seed_users)" in done.stderr
    assert "(--users-file)" in done.stderr

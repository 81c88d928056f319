"""End to end: real Locust, headless, against the real reference service on loopback.

`velro serve` runs on a free port with an SQLite file; the locustfile provisions its seed
through the API (the path every non-reference backend takes), runs a 12-second shape and
must leave samples.csv rows for every category, with no unexpected answer.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import BIN, shape_toml, velro_serve, workload_toml
from velro_perf.reports.samplefiles import SCHEMA
from velro_perf.reports.samples import SampleStore

ROOT = Path(__file__).resolve().parent.parent
SHAPES = shape_toml(
    "it", warmup_s=2, wait_s=(0.3, 1.0), seed=(8, 3, 16), duration_s=12, users=12, spawn_rate=6
)

# every kind of traffic at least once in a 12-user run
WORKLOAD = workload_toml(
    {"authentication": 1, "authorization": 1},
    {"login": 1, "registration": 1, "service_key": 1, "abuse": 1},
)

pytestmark = pytest.mark.slow


def _unavailable(reason: str) -> None:
    # under CI a missing service is a failure, not a skip (as tests/conftest.py does)
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _status(url: str, post: bool = False) -> int:
    if post:
        return httpx.post(url, json={}, timeout=5).status_code
    return httpx.get(url, timeout=5).status_code


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, dict[str, str]]]:
    """The reference service on a free loopback port; yields (base URL, service key or '',
    the environment its commands need)."""
    if (
        importlib.util.find_spec("velro.cli") is None
        or shutil.which("velro", path=str(BIN)) is None
    ):
        _unavailable("the reference service (velro.cli, `velro serve`) is not installed")
    workdir = tmp_path_factory.mktemp("velro")
    env = {
        **os.environ,
        "VELRO_DATABASE_URL": f"sqlite:///{workdir / 'v.db'}",
        "VELRO_REDIS_URL": "",
    }
    velro = str(BIN / "velro")
    init = subprocess.run(
        [velro, "db", "init"], env=env, capture_output=True, text=True, timeout=60
    )
    if init.returncode != 0:
        _unavailable(f"`velro db init` failed: {init.stderr.strip()[-300:]}")
    key = ""
    keys = subprocess.run(
        [velro, "keys", "create", "--name", "perf-test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    printed = re.search(r"^key:\s*(\S+)", keys.stdout, re.MULTILINE)
    if keys.returncode == 0 and printed:
        key = printed.group(1)  # printed once, on a line of its own: "key: <key>"
    with velro_serve(
        workdir,
        env,
        interval_s=0.3,
        not_up=lambda log: _unavailable(f"`velro serve` did not come up: {log[-500:]}"),
    ) as base:
        for path in ("/api/v1/auth/register", "/api/v1/teams", "/api/v1/projects"):
            if _status(f"{base}{path}", post=True) == 404:
                _unavailable(f"the reference service does not serve POST {path}")
        yield base, key, env


@pytest.mark.parametrize(
    ("mode", "extra"),
    [
        # a backend that is not the reference service: the seed is provisioned through the
        # API, by the master, and two worker processes hand their rows to it
        (
            "provisioned, two worker processes, open model",
            ["--processes", "2", "--velro-open-rate", "15"],
        ),
        # the reference service: the seed comes from `velro seed --out`, one local process
        ("velro seed fixtures, local, closed model", ["--velro-fixtures"]),
    ],
)
def test_a_smoke_run_records_every_category_without_unexpected_answers(
    service: tuple[str, str, dict[str, str]], tmp_path: Path, mode: str, extra: list[str]
) -> None:
    base, key, service_env = service
    if extra == ["--velro-fixtures"]:
        fixtures = tmp_path / "fixtures.json"
        seeded = subprocess.run(
            [str(BIN / "velro"), "seed", "--users", "8", "--teams", "3", "--projects", "16",
             "--reset", "--out", str(fixtures)],
            env=service_env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if seeded.returncode != 0:
            _unavailable(f"`velro seed` failed: {(seeded.stdout + seeded.stderr).strip()[-300:]}")
        extra = ["--velro-fixtures", str(fixtures)]
        key = json.loads(fixtures.read_text())["service_key"] or ""
    shapes = tmp_path / "shapes.toml"
    shapes.write_text(SHAPES, encoding="utf-8")
    workload = tmp_path / "workload.toml"
    workload.write_text(WORKLOAD, encoding="utf-8")
    out = tmp_path / "run"
    command = [
        str(BIN / "locust"), "-f", str(ROOT / "locustfile.py"), "--host", base, "--headless",
        "--velro-shapes", str(shapes), "--velro-shape", "it", "--velro-out", str(out),
        "--velro-workload", str(workload),
        "--csv", str(out / "locust"), "--only-summary", *extra,
    ]  # fmt: skip
    env = {**os.environ, "VELRO_PERF_SERVICE_KEY": key if "--velro-fixtures" not in extra else ""}
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    output = run.stdout + run.stderr

    rows = SampleStore(out).frame(SCHEMA.names).to_dict("records")
    categories = Counter(row["category"] for row in rows)
    wanted = {"setup", "authentication", "authorization", "login", "registration", "abuse"}
    if key:
        wanted.add("service_key")
    else:
        assert "service-key users disabled" in output
    assert wanted <= set(categories), f"{mode}: categories {dict(categories)}\n{output[-3000:]}"
    unexpected = [row for row in rows if row["expected"] != 1]
    failures = (
        (out / "locust_failures.csv").read_text() if (out / "locust_failures.csv").exists() else ""
    )
    assert not unexpected, (
        f"{mode}: {len(unexpected)} unexpected answers\n{failures}\n{output[-2000:]}"
    )
    assert run.returncode == 0, output[-3000:]
    assert all(row["latency_ms"] > 0 and row["status"] != 0 for row in rows)
    assert any(row["st_app"] == row["st_app"] and row["st_app"] is not None for row in rows)
    workers = {row["worker"] for row in rows if row["category"] != "setup"}
    if "--processes" in extra:
        assert len(workers) == 2, workers  # rows of both workers reached the master's file
        # the master provisioned the seed and recorded those requests itself
        assert {row["worker"] for row in rows if row["category"] == "setup"} >= {"master"}
        opened = json.loads((out / "open_model.json").read_text())
        assert opened["intended_rps"] == 15
        assert opened["achieved_rps"] > 0
    else:
        assert workers == {"local"}
    actions = json.loads((out / "generator_actions.json").read_text())
    assert actions["processes"]
    assert all(entry["enabled_at"] for entry in actions["processes"].values())

"""The installed tool, as a user gets it: the wheel built from this tree (`pip wheel .`),
installed into a fresh virtual environment (not editable, without the test extra), used
from an empty folder: a short load run that passes with its report, and `api check` of the
reference service by the name of the API file the wheel ships.

The environment is built once per module (about a minute: the wheel, then its dependencies
at the versions of constraints.txt, from pip's cache or index as `make setup` gets them).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port, server_process, shape_toml
from velro_perf.target import wait_healthy

pytestmark = pytest.mark.slow

# one budget a short run can judge conclusively: GET /auth/me's p95 within 1 s (the run
# checks the installed tool works end to end, not the service's figures)
BUDGETS = """
prd = "installed-tool test"

[[budget]]
id = "authentication.p95"
requirement = "authentication"
description = "GET /auth/me answers within 1 s for 95 % of requests."
kind = "latency"
endpoints = ["GET /api/v1/auth/me"]
percentile = 95
max = 1000.0
"""
SHAPES = shape_toml(
    "wheel", warmup_s=2, wait_s=(0.05, 0.1), seed=(6, 2, 6), duration_s=12, users=6, spawn_rate=6
)
# pyproject's test extra: required by the tool, none of them (pytest itself comes with Locust,
# which has a pytest-style locustfile of its own)
TEST_ONLY = ("pytest", "pytest-benchmark", "fastapi-users", "aiosqlite", "django-oauth-toolkit")
NOT_INSTALLED = ("pytest_benchmark", "fastapi_users", "aiosqlite", "oauth2_provider")
OLD_NAMES = ("scenarios", "reports")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that points into the clone (PYTHONPATH, the test
    run's virtual environment), so the installed tool imports only what it installed."""
    env = {
        k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    }
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != Path(sys.executable).parent
    )
    env.update(extra)
    return env


def _run(argv: list[str | Path], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", work / "dist", ROOT],
        cwd=work,
        timeout=180,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = (work / "dist").glob("velro-*.whl")
    venv = work / "venv"
    made = _run([sys.executable, "-m", "venv", venv], cwd=work, timeout=60)
    assert made.returncode == 0, made.stderr
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--quiet"]
    done = _run([*pip, "-c", ROOT / "constraints.txt", wheel], cwd=work, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return Installed(wheel, venv)


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_the_wheel_ships_the_suite_under_one_name_with_its_data(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert {n.split("/")[0] for n in names} == {"velro", "velro_perf", "velro-0.1.0.dist-info"}
    assert {
        "velro_perf/scenarios/hooks.py",
        "velro_perf/reports/stats.py",
        "velro_perf/reports/templates/report.html.j2",
        "velro_perf/data/locustfile.py",
        "velro_perf/data/fixtures/shapes.toml",
        "velro_perf/data/fixtures/budgets.toml",
        "velro_perf/data/fixtures/workload.toml",
        "velro_perf/data/fixtures/story_claims.toml",
        "velro_perf/data/targets/contract.toml",
        "velro_perf/data/targets/fastapi-users.toml",
    } <= names
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "benchmarks/"))]
    metadata = zipfile.ZipFile(installed.wheel).read("velro-0.1.0.dist-info/METADATA").decode()
    required = [
        re.split(r"[\s\[<>=;]", line.removeprefix("Requires-Dist: "), maxsplit=1)[0].lower()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ") and "extra ==" not in line
    ]
    assert "locust" in required
    assert not set(TEST_ONLY) & set(required)


def test_the_installed_tool_has_neither_test_packages_nor_the_old_names(
    installed: Installed, empty: Path
) -> None:
    probe = (
        "import importlib.util as u, velro_perf.scenarios as s, velro_perf.suitedata as d\n"
        f"print([m for m in {NOT_INSTALLED + OLD_NAMES!r} if u.find_spec(m)])\n"
        "print(s.__file__)\n"
        "print(d.shapes_file())\n"
    )
    done = _run([installed.bin / "python", "-c", probe], cwd=empty, timeout=60)
    assert done.returncode == 0, done.stderr
    found, scenarios_file, shapes = done.stdout.splitlines()
    assert found == "[]"
    venv = str(installed.venv.resolve())
    assert scenarios_file.startswith(venv)
    assert shapes.startswith(venv)


def test_a_short_run_from_an_empty_folder_passes_and_writes_its_report(
    installed: Installed, empty: Path, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "shapes.toml").write_text(SHAPES, encoding="utf-8")
    (inputs / "budgets.toml").write_text(BUDGETS, encoding="utf-8")
    argv: list[str | Path] = [installed.bin / "velro-perf", "run", "--shape", "wheel"]
    argv += ["--shapes", inputs / "shapes.toml", "--budgets", inputs / "budgets.toml"]
    done = _run(argv, cwd=empty, timeout=150)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = (empty / "runs").glob("*-wheel-fixed")
    assert (run_dir / "report.html").is_file()
    assert json.loads((run_dir / "summary.json").read_text())["verdict"] == "pass"
    # the API file and the locustfile of the installed package, not of this clone
    config = json.loads((run_dir / "config.json").read_text())
    assert str(config["api_file"]).startswith(str(installed.venv.resolve()))


@pytest.fixture
def reference(installed: Installed, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The installed reference service on a free port with an SQLite file; yields (base
    URL, a service key)."""
    env = _clean_env(VELRO_DATABASE_URL=f"sqlite:///{tmp_path / 'velro.db'}", VELRO_REDIS_URL="")
    velro = str(installed.bin / "velro")
    init = subprocess.run(
        [velro, "db", "init"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert init.returncode == 0, init.stderr
    keys = subprocess.run(
        [velro, "keys", "create", "--name", "wheel-test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert keys.returncode == 0, keys.stderr
    printed = re.search(r"^key:\s*(\S+)", keys.stdout, re.MULTILINE)  # "key: <key>", once
    assert printed, keys.stdout
    key = printed.group(1)
    port = free_port()
    log = tmp_path / "serve.log"
    argv = [velro, "serve", "--host", "127.0.0.1", "--port", str(port)]
    with server_process(argv, log, env=env, cwd=tmp_path) as server:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, server, 30.0, log)
        yield base, key


def test_api_check_of_the_reference_by_the_shipped_file_name_passes(
    installed: Installed, empty: Path, reference: tuple[str, str]
) -> None:
    base, key = reference
    argv: list[str | Path] = [installed.bin / "velro-perf", "api", "check", "contract"]
    done = _run([*argv, "--target", base, "--service-key", key], cwd=empty, timeout=60)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "targets/contract.toml" in done.stdout + done.stderr


def test_bench_from_an_installed_tool_names_the_clone_it_needs(
    installed: Installed, empty: Path
) -> None:
    done = _run([installed.bin / "velro-perf", "bench", "--quick"], cwd=empty, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "benchmarks/micro/" in done.stderr
    assert "clone" in done.stderr

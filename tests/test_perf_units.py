"""The pieces of `velro-perf`: config hashing, the loopback rule, shapes, the stats tail, the
reference service's private Redis keys and PostgreSQL database, and process cleanup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from velro_perf.errors import ConfigError, UsageError
from velro_perf.locust_proc import LocustOptions, locust_argv
from velro_perf.procs import spawn
from velro_perf.progress import StatsHistoryTail, format_progress
from velro_perf.runmeta import config_hash, make_run_id
from velro_perf.shapes import load_shape
from velro_perf.target import (
    ReferenceService,
    ServiceOptions,
    is_loopback_url,
    redact_url,
    require_loopback,
)

ROOT = Path(__file__).resolve().parents[1]

# -- config hash ---------------------------------------------------------------------------


def _config(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "run_id": "20251124-160000-smoke-fixed",
        "shape": "smoke",
        "target": "reference",
        "target_url": "http://127.0.0.1:41234",
        "service_profile": "fixed",
        "processes": 1,
        "open_model_rate": None,
        "budgets_file": "/somewhere/fixtures/budgets.toml",
        "budgets_sha256": "ab" * 32,
        "seed": {"users": 100, "teams": 10, "projects": 100},
        "database": "sqlite",
        "database_url": "sqlite:////runs/20251124-160000-smoke-fixed/velro.db",
        "redis": "127.0.0.1:6379",
        "redis_url": "redis://127.0.0.1:6379/0",
        "redis_prefix": "velro_perf:20251124-160000-smoke-fixed:",
    }
    base.update(changes)
    return base


def test_config_hash_ignores_times_ports_and_paths() -> None:
    other_run = _config(
        run_id="20251125-090000-smoke-fixed",
        target_url="http://127.0.0.1:50000",
        budgets_file="/elsewhere/budgets.toml",
        database_url="sqlite:////tmp/other/velro.db",
        redis_prefix="velro_perf:20251125-090000-smoke-fixed:",
        started_at="2025-11-25T09:00:00Z",
        config_hash="stale",
    )
    assert config_hash(other_run) == config_hash(_config())
    assert len(config_hash(_config())) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"shape": "ramp-10k"},
        {"service_profile": "degraded"},
        {"processes": 2},
        {"open_model_rate": 50.0},
        {"seed": {"users": 101, "teams": 10, "projects": 100}},
        {"budgets_sha256": "cd" * 32},
        {"database": "postgres"},
    ],
)
def test_config_hash_changes_with_the_configuration(change: dict[str, object]) -> None:
    assert config_hash(_config(**change)) != config_hash(_config())


def test_config_hash_does_not_depend_on_key_order() -> None:
    config = _config()
    assert config_hash(dict(reversed(list(config.items())))) == config_hash(config)


def test_run_id_is_utc_time_shape_and_profile() -> None:
    from datetime import UTC, datetime

    moment = datetime(2025, 11, 24, 16, 5, 9, tzinfo=UTC)
    assert make_run_id("smoke", "degraded", moment) == "20251124-160509-smoke-degraded"


# -- loopback rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.1.2.3:8000", True),
        ("http://localhost:8000", True),
        ("http://LOCALHOST", True),
        ("http://[::1]:8000", True),
        ("https://127.0.0.1", True),
        ("http://10.0.0.1:8000", False),
        ("http://192.168.1.5", False),
        ("http://example.com", False),
        ("http://localhost.example.com", False),
        ("http://127.0.0.1.nip.io", False),
        ("http://[::2]:8000", False),
        ("ftp://127.0.0.1", False),
        ("127.0.0.1:8000", False),
    ],
)
def test_only_loopback_targets_are_accepted(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


def test_require_loopback_names_the_target_and_the_fix() -> None:
    with pytest.raises(UsageError, match=r"'http://10\.0\.0\.1'.*127\.0\.0\.1"):
        require_loopback("http://10.0.0.1")
    assert require_loopback("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"


def test_redacted_urls_keep_no_password() -> None:
    assert redact_url("postgresql://u:secret@127.0.0.1:5432/db") == (
        "postgresql://u:***@127.0.0.1:5432/db"
    )
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


# -- shapes and the Locust command line ------------------------------------------------------


def test_a_shape_gives_its_sizes_and_duration(tmp_path: Path) -> None:
    path = tmp_path / "shapes.toml"
    path.write_text(
        textwrap.dedent(
            """
            [shapes.smoke]
            warmup_s = 10
            seed_users = 50
            seed_teams = 5
            seed_projects = 40
            wait_s = [1.0, 2.0]
            workload = "sessions.toml"
            stages = [
              { duration_s = 20, users = 5, spawn_rate = 1 },
              { duration_s = 40, users = 10, spawn_rate = 1 },
            ]
            """
        )
    )
    shape = load_shape("smoke", path)
    assert (shape.warmup_s, shape.seed_users, shape.seed_teams, shape.seed_projects) == (
        10.0,
        50,
        5,
        40,
    )
    assert shape.duration_s == 60.0
    assert shape.workload_file == tmp_path / "sessions.toml"


def test_a_bad_shape_value_is_named(tmp_path: Path) -> None:
    path = tmp_path / "shapes.toml"
    path.write_text(
        "[shapes.smoke]\nwarmup_s = -3\nwait_s = [1, 2]\nseed_users = 1\nseed_teams = 1\n"
        "seed_projects = 1\nstages = [{ duration_s = 5, users = 1, spawn_rate = 1 }]\n"
    )
    with pytest.raises(ConfigError, match=r"warmup_s is -3"):
        load_shape("smoke", path)


def test_locust_gets_the_locustfile_options(tmp_path: Path) -> None:
    argv = locust_argv(
        LocustOptions(
            host="http://127.0.0.1:8000",
            shape="smoke",
            run_dir=tmp_path,
            fixtures=tmp_path / "fixtures.json",
            open_rate=25.0,
            processes=2,
        )
    )
    joined = " ".join(argv)
    assert f"-f {ROOT / 'locustfile.py'}" in joined
    assert "--headless" in argv
    assert "--csv-full-history" in argv
    assert f"--csv {tmp_path / 'locust'}" in joined
    assert "--velro-shape smoke" in joined
    assert f"--velro-out {tmp_path}" in joined
    assert f"--velro-fixtures {tmp_path / 'fixtures.json'}" in joined
    assert "--velro-open-rate 25" in joined
    assert "--processes 2" in joined


# -- progress ------------------------------------------------------------------------------

HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,95%,"
    "Total Request Count,Total Failure Count\n"
)


def test_the_stats_tail_reads_only_complete_new_rows(tmp_path: Path) -> None:
    path = tmp_path / "locust_stats_history.csv"
    tail = StatsHistoryTail(path)
    assert tail.latest() is None  # no file yet
    path.write_text(
        HISTORY_HEADER
        + "100,5,GET,/api/v1/auth/me,3.0,0.0,4,9,30,0\n"
        + "100,5,,Aggregated,12.5,0.5,4,9,120,2\n"
    )
    first = tail.latest()
    assert first is not None
    assert (first.users, first.requests, first.failures) == (5, 120, 2)
    with path.open("a") as fh:
        fh.write("101,8,,Aggregated,20.0,0.0,4,9,14")  # a row Locust has not finished writing
    latest = tail.latest()
    assert latest is not None
    assert latest.requests == 120
    with path.open("a") as fh:
        fh.write("0,0\n")
    latest = tail.latest()
    assert latest is not None
    assert (latest.users, latest.requests, latest.rps) == (8, 140, 20.0)


def test_a_progress_line_shows_time_users_requests_rate_failures_and_cpu(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(HISTORY_HEADER + "100,5,,Aggregated,12.5,0.5,4,9,200,1\n")
    line = format_progress(30.2, 120.0, StatsHistoryTail(path).latest(), 42.0)
    for part in ("30/120 s", "users 5", "requests 200", "rps 12.5", "failures 1", "CPU 42 %"):
        assert part in line


# -- process cleanup -----------------------------------------------------------------------

# a tool that forks: two children in its group, one that leaves it with its own session
TREE = textwrap.dedent(
    """
    import subprocess, sys, time
    kids = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    kids.append(subprocess.Popen(["sleep", "60"], start_new_session=True))
    with open(sys.argv[1], "w") as fh:
        fh.write(" ".join(str(k.pid) for k in kids))
    time.sleep(60)
    """
)


def _wait_for_pids(path: Path) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return [int(p) for p in path.read_text().split()]
        time.sleep(0.05)
    raise AssertionError(f"the process tree never wrote {path}")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _assert_all_gone(pids: list[int], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    assert [p for p in pids if _alive(p)] == []


def test_stopping_a_process_group_leaves_no_process_behind(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    proc = spawn("tree", [sys.executable, "-c", TREE, str(pids_file)])
    children = _wait_for_pids(pids_file)
    proc.stop(grace_s=2.0)
    _assert_all_gone([proc.pid, *children])


# the runner's side: a process that spawns the tree, then is interrupted
RUNNER = textwrap.dedent(
    """
    import signal, sys, time
    from velro_perf.procs import spawn

    def stop(signum, frame):
        raise SystemExit(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    proc = spawn("tree", [sys.executable, "-c", sys.argv[1], sys.argv[2]])
    print(proc.pid, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_runner_leaves_no_process_behind(tmp_path: Path, sig: int) -> None:
    pids_file = tmp_path / "pids"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    with subprocess.Popen(
        [sys.executable, "-c", RUNNER, TREE, str(pids_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as runner:
        try:
            assert runner.stdout is not None
            tool = int(runner.stdout.readline())
            children = _wait_for_pids(pids_file)
            runner.send_signal(sig)
            runner.wait(20)
            _assert_all_gone([tool, *children])
        finally:
            runner.kill()


def test_a_killed_runner_takes_its_children_down(tmp_path: Path) -> None:
    # SIGKILL gives the runner no chance to clean up: PR_SET_PDEATHSIG still ends its child
    script = (
        "import sys, time\nfrom velro_perf.procs import spawn\n"
        "p = spawn('sleeper', ['sleep', '60'])\nprint(p.pid, flush=True)\ntime.sleep(60)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    ) as runner:
        assert runner.stdout is not None
        child = int(runner.stdout.readline())
        runner.kill()
    _assert_all_gone([child])


# -- the reference service's private resources ----------------------------------------------


def _service(tmp_path: Path, **options: object) -> ReferenceService:
    return ReferenceService(
        ServiceOptions(run_dir=tmp_path, run_id="20251124-160000-unit-fixed", **options)  # type: ignore[arg-type]
    )


def test_sqlite_lives_in_the_run_folder(tmp_path: Path) -> None:
    service = _service(tmp_path, use_redis=False)
    service.prepare()
    assert service.database_url == f"sqlite:///{tmp_path.resolve() / 'velro.db'}"
    assert service.redis_url == ""
    assert service.url.startswith("http://127.0.0.1:")
    service.stop()


def test_an_unknown_database_choice_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--database 'mysql'"):
        _service(tmp_path, database="mysql", use_redis=False).prepare()


@pytest.mark.redis
def test_redis_keys_of_the_run_are_deleted_and_no_others(
    tmp_path: Path, redis_server: str, redis_prefix: str
) -> None:
    import redis

    client = redis.Redis.from_url(redis_server)
    neighbour = redis_prefix + "not-ours"
    client.set(neighbour, "1")
    service = _service(tmp_path)
    service.prepare()
    assert service.redis_url.startswith("redis://127.0.0.1:6379/")
    env = service.env()
    prefix = env["VELRO_REDIS_PREFIX"]
    assert "20251124-160000-unit-fixed" in prefix
    db = redis.Redis.from_url(service.redis_url)
    db.set(prefix + "authz:1", "x")
    db.set(prefix + "rl:2", "y")
    service.stop()
    assert list(db.scan_iter(match=prefix + "*")) == []
    assert client.get(neighbour) == b"1"


@pytest.mark.postgres
def test_postgres_gets_a_database_of_its_own_dropped_after(
    tmp_path: Path, postgres_server: str
) -> None:
    import psycopg

    service = _service(tmp_path, database="postgres", use_redis=False)
    service.prepare()
    name = service.database_url.rsplit("/", 1)[1]
    assert name == "velro_run_20251124_160000_unit_fixed"

    def exists() -> bool:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None

    assert exists()
    service.stop()
    assert not exists()


def test_config_json_round_trip_is_plain_json() -> None:
    assert json.loads(json.dumps(_config())) == _config()


# -- scraper and watcher ---------------------------------------------------------------------


def test_the_scraper_records_the_metrics_and_stops_quietly_on_404(
    tmp_path: Path, make_settings: Any, live_server: Any
) -> None:
    import httpx

    from velro_perf.scraper import MetricsScraper

    server = live_server(make_settings())
    out = tmp_path / "metrics.jsonl"
    scraper = MetricsScraper(server.url, out, interval_s=0.1)
    with httpx.Client(timeout=5) as client:
        assert scraper.scrape_once(client) is True
        assert scraper.scrape_once(client) is True
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 2
        assert {"ts", "metrics"} <= rows[0].keys()
        assert isinstance(rows[0]["metrics"], dict)

        elsewhere = MetricsScraper(server.url, tmp_path / "none.jsonl")
        elsewhere.url = server.url + "/api/v1/no-such-route"  # a backend without the route
        assert elsewhere.scrape_once(client) is False
    assert elsewhere.unsupported
    assert not (tmp_path / "none.jsonl").exists()


SPINNER = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen(["sleep", "30"])
    end = time.monotonic() + 30
    while time.monotonic() < end:
        pass
    """
)


def test_the_watcher_samples_every_process_of_the_generator_tree(tmp_path: Path) -> None:
    from velro_perf.watcher import GeneratorWatcher

    proc = spawn("spinner", [sys.executable, "-c", SPINNER])
    try:
        watcher = GeneratorWatcher(proc.pid, tmp_path / "generator.jsonl", intended_rps=5.0)
        deadline = time.monotonic() + 10
        while len(watcher.descendants_seen()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        watcher.sample()  # primes both processes
        time.sleep(1.0)
        sample = watcher.sample()
    finally:
        proc.stop(grace_s=2.0)
    assert sample is not None
    assert sample["processes"] == 2
    assert sample["cpu_percent_max"] > 0  # the spinning parent
    assert sample["cpu_percent_total"] >= sample["cpu_percent_max"]
    assert sample["rss_mb"] > 0
    assert sample["intended_rps"] == 5.0
    assert sample["users"] is None  # no Locust statistics to read

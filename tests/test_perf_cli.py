"""The `velro-perf` command line, run as a user runs it: in a subprocess, judged by exit code.

Exit codes (docs/run-format.md): 0 pass, 1 a budget fails, 2 bad usage or configuration,
3 an invalid run. User errors are one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    cli_env,
    free_port,
    latency_budget_toml,
    run_cli,
    shape_toml,
    velro_perf_argv,
)
from velro_perf.reports.samplefiles import sample_files

ROOT = Path(__file__).resolve().parents[1]

SHAPES = shape_toml(
    "smoke", warmup_s=1, wait_s=(0.1, 0.2), seed=(5, 1, 5), duration_s=5, users=2, spawn_rate=2
)


def run_smoke(shapes_file: Path, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`velro-perf run --shape smoke --shapes FILE ARGS...`."""
    return run_cli("run", "--shape", "smoke", "--shapes", shapes_file, *args, cwd=cwd)


def assert_clean_error(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


@pytest.fixture
def shapes_file(tmp_path: Path) -> Path:
    path = tmp_path / "shapes.toml"
    path.write_text(SHAPES)
    return path


@pytest.fixture
def budgets_file(tmp_path: Path) -> Callable[..., Path]:
    def make(max_ms: float = 50.0, name: str = "budgets.toml") -> Path:
        path = tmp_path / name
        # one latency budget, so a hand-made run passes or fails on that budget alone
        path.write_text(
            latency_budget_toml(
                "authentication.p95",
                "authentication",
                "GET /api/v1/auth/me",
                max_ms,
                description="GET /auth/me answers within 50 ms for 95 % of requests.",
            )
        )
        return path

    return make


# -- usage errors: exit 2 ------------------------------------------------------------------


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli(cwd=tmp_path)
    assert_clean_error(done, 2, "usage: velro-perf")


def test_run_without_shape_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli("run", cwd=tmp_path)
    assert_clean_error(done, 2, "--shape")


def test_an_open_rate_that_is_not_a_number_is_named(tmp_path: Path) -> None:
    done = run_cli("run", "--shape", "smoke", "--open-rate", "fast", cwd=tmp_path)
    assert_clean_error(done, 2, "'fast'")


def test_a_non_loopback_target_is_refused_before_any_run_starts(tmp_path: Path) -> None:
    done = run_cli("run", "--shape", "smoke", "--target", "http://192.0.2.10:8000", cwd=tmp_path)
    assert_clean_error(done, 2, "192.0.2.10", "loopback")
    assert not (tmp_path / "runs").exists()


def test_a_service_option_with_a_target_is_refused(tmp_path: Path) -> None:
    done = run_cli(
        "run",
        "--shape",
        "smoke",
        "--target",
        "http://127.0.0.1:9",
        "--service-profile",
        "degraded",
        cwd=tmp_path,
    )
    assert_clean_error(done, 2, "--service-profile")


def test_a_port_in_use_is_refused(tmp_path: Path, shapes_file: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = run_smoke(shapes_file, "--port", port, cwd=tmp_path)
    assert_clean_error(done, 2, f"port {port}", "in use")
    assert not (tmp_path / "runs").exists()


def test_an_unknown_shape_is_named(tmp_path: Path, shapes_file: Path) -> None:
    done = run_cli("run", "--shape", "nosuch", "--shapes", shapes_file, cwd=tmp_path)
    assert_clean_error(done, 2, "'nosuch'", "smoke")


def test_an_invalid_budget_file_is_refused_naming_the_bad_value(
    tmp_path: Path, shapes_file: Path, budgets_file: Callable[..., Path]
) -> None:
    bad = budgets_file(max_ms=-5.0, name="bad.toml")
    target = f"http://127.0.0.1:{free_port()}"
    done = run_smoke(shapes_file, "--budgets", bad, "--target", target, cwd=tmp_path)
    assert_clean_error(done, 2, "-5", "authentication.p95")


def test_gate_of_a_folder_that_is_not_a_run_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli("gate", tmp_path / "nowhere", cwd=tmp_path)
    assert_clean_error(done, 2, "nowhere")


def test_bench_is_handed_its_own_arguments(tmp_path: Path) -> None:
    done = run_cli("bench", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "usage: velro-perf bench" in done.stdout


# -- an unreachable target: exit 3 ---------------------------------------------------------


def test_an_unreachable_loopback_target_is_an_invalid_run(
    tmp_path: Path, shapes_file: Path, budgets_file: Callable[..., Path]
) -> None:
    port = free_port()
    target = f"http://127.0.0.1:{port}"
    done = run_smoke(shapes_file, "--budgets", budgets_file(), "--target", target, cwd=tmp_path)
    assert_clean_error(done, 3, f"127.0.0.1:{port}", "unreachable")


# -- gate on a hand-made finished run --------------------------------------------------------


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    """A finished run folder as docs/run-format.md describes it, with `n` GET /auth/me samples
    of about `latency_ms` each after warm-up, and the generator at `cpu` % of a core."""

    def make(name: str, latency_ms: float, n: int = 400, cpu: float = 30.0) -> Path:
        run = tmp_path / "runs" / name
        run.mkdir(parents=True)
        t0 = 1_764_000_000.0
        config: dict[str, Any] = {
            "run_id": name,
            "shape": "smoke",
            "target": "reference",
            "service_profile": "fixed",
            "processes": 1,
            "open_model_rate": None,
            "seed": {"users": 5, "teams": 1, "projects": 5},
            "config_hash": "0" * 64,
        }
        meta: dict[str, Any] = {
            "run_id": name,
            "started_at": "2025-11-24T16:00:00Z",
            "ended_at": "2025-11-24T16:01:00Z",
            "measured_from": t0 + 5,
            "complete": True,
            "interrupted": None,
            "generator": {"gc": None, "keep_alive_s": 75, "processes": 1, "wait_time": None},
        }
        (run / "config.json").write_text(json.dumps(config))
        (run / "meta.json").write_text(json.dumps(meta))
        lines = ["ts,endpoint,category,latency_ms,status,expected,worker"]
        # warm-up rows, which must not be judged: slow on purpose
        lines += [
            f"{t0 + i * 0.01:.3f},GET /api/v1/auth/me,authentication,900,200,1,local"
            for i in range(50)
        ]
        for i in range(n):
            latency = latency_ms * (0.8 + 0.4 * ((i * 7) % 10) / 10)  # a spread, not one value
            lines.append(
                f"{t0 + 5 + i * 0.05:.3f},GET /api/v1/auth/me,authentication,"
                f"{latency:.3f},200,1,local"
            )
        (run / "samples.csv").write_text("\n".join(lines) + "\n")
        gen = [
            {
                "ts": t0 + 5 + s,
                "cpu_percent_max": cpu,
                "cpu_percent_total": cpu,
                "rss_mb": 80.0,
                "processes": 1,
                "users": 2,
                "intended_rps": None,
                "achieved_rps": 20.0,
            }
            for s in range(20)
        ]
        (run / "generator.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gen))
        return run

    return make


@pytest.mark.parametrize(
    ("latency_ms", "n", "cpu", "code", "verdict"),
    [
        pytest.param(5.0, 400, 30.0, 0, "pass", id="fast-passes"),
        pytest.param(200.0, 400, 30.0, 1, "fail", id="slow-fails"),
        pytest.param(5.0, 20, 30.0, 3, "invalid", id="too-few-samples-invalid"),
        pytest.param(5.0, 400, 99.0, 3, "invalid", id="saturated-generator-invalid"),
    ],
)
def test_gate_rejudges_a_finished_run(
    make_run: Callable[..., Path],
    budgets_file: Callable[..., Path],
    tmp_path: Path,
    latency_ms: float,
    n: int,
    cpu: float,
    code: int,
    verdict: str,
) -> None:
    run = make_run("run-1", latency_ms, n=n, cpu=cpu)
    done = run_cli("gate", run, "--budgets", budgets_file(), cwd=tmp_path)
    assert done.returncode == code, (done.stdout, done.stderr)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["verdict"] == verdict
    assert (run / "junit.xml").is_file()
    assert f"verdict: {verdict}" in done.stdout


def test_gate_with_an_invalid_budget_file_names_the_bad_value(
    make_run: Callable[..., Path], budgets_file: Callable[..., Path], tmp_path: Path
) -> None:
    run = make_run("run-1", 5.0)
    done = run_cli("gate", run, "--budgets", budgets_file(max_ms=-5.0), cwd=tmp_path)
    assert_clean_error(done, 2, "-5", "authentication.p95")
    assert not (run / "summary.json").exists()


def test_compare_exits_1_on_a_significant_regression_and_0_without(
    make_run: Callable[..., Path], budgets_file: Callable[..., Path], tmp_path: Path
) -> None:
    fast = make_run("fast", 5.0)
    fast_again = make_run("fast-again", 5.0)
    slow = make_run("slow", 40.0)
    for run in (fast, fast_again, slow):
        assert run_cli("gate", run, "--budgets", budgets_file(), cwd=tmp_path).returncode in {0, 1}

    regressed = run_cli("compare", fast, slow, "--out", tmp_path / "cmp.html", cwd=tmp_path)
    assert regressed.returncode == 1, (regressed.stdout, regressed.stderr)
    assert "GET /api/v1/auth/me" in regressed.stdout
    assert "regressed" in regressed.stdout
    assert (tmp_path / "cmp.html").is_file()

    same = run_cli("compare", fast, fast_again, cwd=tmp_path)
    assert same.returncode == 0, (same.stdout, same.stderr)
    assert (fast_again / "comparison.html").is_file()


def test_report_rerenders_a_run(
    make_run: Callable[..., Path], budgets_file: Callable[..., Path], tmp_path: Path
) -> None:
    run = make_run("run-1", 5.0)
    assert run_cli("gate", run, "--budgets", budgets_file(), cwd=tmp_path).returncode == 0
    done = run_cli("report", run, "--out", tmp_path / "r.html", cwd=tmp_path)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert (tmp_path / "r.html").read_text().lstrip().lower().startswith("<!doctype html")


def test_an_unknown_database_is_named_and_leaves_no_run_folder(
    tmp_path: Path, shapes_file: Path, budgets_file: Callable[..., Path]
) -> None:
    budgets = budgets_file()
    done = run_smoke(shapes_file, "--budgets", budgets, "--database", "mysql", cwd=tmp_path)
    assert_clean_error(done, 2, "'mysql'", "postgres")
    assert not (tmp_path / "runs").exists()


# -- a real run, interrupted -----------------------------------------------------------------

SHORT_SHAPE = shape_toml(
    "tiny", warmup_s=1, wait_s=(0.5, 1.0), seed=(6, 2, 6), duration_s=30, users=4, spawn_rate=4
)


@pytest.mark.slow
def test_an_interrupted_run_keeps_what_it_measured_and_leaves_no_process(tmp_path: Path) -> None:
    import signal
    import time

    import psutil

    shapes = tmp_path / "shapes.toml"
    shapes.write_text(SHORT_SHAPE)
    env = cli_env()
    with subprocess.Popen(
        [*velro_perf_argv(), "run", "--shape", "tiny", "--shapes", str(shapes), "--no-redis"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as runner:
        assert runner.stdout is not None
        deadline = time.monotonic() + 60
        for line in runner.stdout:  # progress lines come once Locust runs
            if "requests" in line and "requests 0 " not in line:
                break
            assert time.monotonic() < deadline, "the run never made requests"
        seen = {p.pid for p in psutil.Process(runner.pid).children(recursive=True)}
        assert len(seen) >= 2  # velro serve and locust at least
        runner.send_signal(signal.SIGINT)
        output = line + runner.stdout.read()
        code = runner.wait(60)
    assert code == 3, output
    assert "run incomplete (SIGINT)" in output
    survivors = [pid for pid in seen if psutil.pid_exists(pid)
                 and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]  # fmt: skip
    assert survivors == []
    (run,) = (tmp_path / "runs").glob("*-tiny-fixed")
    meta = json.loads((run / "meta.json").read_text())
    assert meta["complete"] is False
    assert meta["interrupted"] == "SIGINT"
    assert meta["generator"]["keep_alive_s"] == 75
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] is False
    assert summary["requests"] > 0
    for name in ("config.json", "junit.xml", "report.html", "generator.jsonl"):
        assert (run / name).is_file(), name
    assert sample_files(run), "no samples/ part"
    # an incomplete run is not a row of history.csv (one row per finished run)
    assert not (tmp_path / "runs" / "history.csv").exists()

"""The `velro-perf bench` command: run pytest-benchmark over benchmarks/micro/, print the tables,
and turn broken budgets and regressions into exit code 1 (velro_perf/bench/__init__.py)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from velro_perf.bench.compare import ALPHA, MIN_EFFECT, compare_benchmarks, judge_tier_budgets
from velro_perf.bench.tables import budgets_table, compare_table, results_table
from velro_perf.errors import (
    EXIT_FAIL,
    EXIT_PASS,
    EXIT_USAGE,
    ConfigError,
    UsageError,
    VelroPerfError,
)
from velro_perf.paths import budgets_file
from velro_perf.reports.benchjson import read_bench_json
from velro_perf.reports.errors import RunDirError
from velro_perf.reports.units import fmt_ms
from velro_perf.suitedata import source_checkout

__all__ = [
    "FULL_ARGS",
    "QUICK_ARGS",
    "build_parser",
    "clone_root",
    "judge",
    "main",
    "pytest_command",
]

# Quick mode (CI): every benchmark body still runs and still lands in the JSON, but for about
# 10 ms each instead of a second. ``--benchmark-disable`` would run the bodies without
# writing any JSON, and the gate needs it.
QUICK_ARGS = ("--benchmark-min-rounds=1", "--benchmark-max-time=0.01", "--benchmark-warmup=off")
# Full mode: at least 20 rounds, so that the comparison has rounds enough to find a shift
# even in the slow benchmarks (argon2id, the executor bursts); a round of at least 50 µs (a
# fast call is repeated within a round, pytest-benchmark's calibration) and at most 0.3 s per
# benchmark, which bounds the JSON at a few MB: with 1 s and 5 µs rounds it was 68 MB.
FULL_ARGS = (
    "--benchmark-min-rounds=20",
    "--benchmark-min-time=0.00005",
    "--benchmark-max-time=0.3",
    "--benchmark-warmup=on",
    "--benchmark-warmup-iterations=1000",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="velro-perf bench",
        description="Run the pytest-benchmark microbenchmarks of benchmarks/micro/ (in a clone "
        "of the repository), gate on the tier "
        "budgets, and optionally compare with a baseline JSON. Exit 0 pass, 1 a benchmark "
        "failed, a budget broke or a regression was found, 2 bad usage. Arguments after -- go "
        "to pytest.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="each benchmark for about 10 ms (CI): still judged"
    )
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="BASELINE_JSON",
        help="a previous run's JSON (e.g. runs/bench/latest.json kept aside); exit 1 on a "
        f"regression (Mann-Whitney U p < {ALPHA:g} and median >= {MIN_EFFECT:.0%} slower)",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=ALPHA,
        help=f"significance level of the regression test (default {ALPHA:g})",
    )
    parser.add_argument(
        "--min-effect",
        type=float,
        default=MIN_EFFECT,
        metavar="FRACTION",
        help=f"smallest slowdown of the median that counts (default {MIN_EFFECT:g}: 10 %%)",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also copy the JSON here")
    parser.add_argument("--budgets", type=Path, default=budgets_file(), metavar="FILE")
    parser.add_argument(
        "--out", type=Path, default=Path("runs"), help="runs folder (default ./runs)"
    )
    parser.add_argument(
        "--throughput",
        action="store_true",
        help="run the side-by-side throughput comparison (benchmarks/throughput.py) instead",
    )
    return parser


def clone_root() -> Path:
    """The repository clone whose benchmarks/ this command runs: the one the suite runs from,
    else the current folder. The benchmarks measure velro's internals with pytest and are
    not part of the installed tool; UsageError, with the fix, when there is no clone."""
    for root in (source_checkout(), Path.cwd()):
        if root is not None and (root / "benchmarks" / "micro" / "conftest.py").is_file():
            return root
    raise UsageError(
        "velro-perf bench runs the microbenchmarks in benchmarks/micro/ of a clone of the "
        "repository, which an installed velro-perf does not carry; run it in the clone's "
        "folder (`make bench`, or `velro-perf bench` there after `pip install -e '.[dev,test]'`)"
    )


def pytest_command(
    json_path: Path, *, quick: bool, extra: Sequence[str] = (), root: Path | None = None
) -> list[str]:
    """The pytest command line that runs every benchmark and writes the JSON."""
    return [
        sys.executable,
        "-m",
        "pytest",
        str((root or clone_root()) / "benchmarks" / "micro"),
        "-q",
        "-p",
        "no:cacheprovider",
        f"--benchmark-json={json_path}",
        "--benchmark-sort=name",
        "--benchmark-columns=median,iqr,max,rounds,iterations",
        *(QUICK_ARGS if quick else FULL_ARGS),
        *extra,
    ]


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = read_bench_json(path)
    except RunDirError as exc:
        raise ConfigError(f"{what}: {exc}") from exc
    if data is None:
        raise ConfigError(
            f"{what} {str(path)!r} does not exist or holds no JSON object; give a JSON that "
            "velro-perf bench wrote"
        )
    if not isinstance(data.get("benchmarks"), list):
        raise ConfigError(
            f"{what} {str(path)!r} has no 'benchmarks' list; is it pytest-benchmark JSON?"
        )
    return data


def _throughput(extra: Sequence[str], runs: Path) -> int:
    """``python -m benchmarks.throughput``, writing into this runs folder unless told otherwise."""
    args = list(extra)
    if "--out" not in args:
        args += ["--out", str((runs / "bench" / "throughput.json").resolve())]
    root = clone_root()
    cmd = [sys.executable, "-m", "benchmarks.throughput", *args]
    # run from the clone: benchmarks/ is a folder of the project, not an installed package
    return subprocess.run(cmd, cwd=root, check=False).returncode  # noqa: S603


def judge(
    data: dict[str, Any],
    *,
    budgets_path: Path,
    baseline: dict[str, Any] | None = None,
    pytest_code: int = 0,
    out: TextIO | None = None,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
) -> int:
    """Print the tables for one benchmark JSON and return the exit code of the gate."""
    stream = out if out is not None else sys.stdout

    def say(*parts: str) -> None:
        print(*parts, file=stream)

    say()
    say("\n".join(results_table(data)))
    say("\n(x anchor: the ratio of medians to the physical anchor named beside it)\n")
    failed = pytest_code != 0
    if failed:
        say(f"FAIL: pytest exited {pytest_code}: a benchmark failed or errored (see above)")
    failed |= _tier_budgets_broken(data, budgets_path, say)
    if baseline is not None:
        failed |= _regressed(baseline, data, alpha, min_effect, say)
    return EXIT_FAIL if failed else EXIT_PASS


def _tier_budgets_broken(data: dict[str, Any], budgets_path: Path, say: Any) -> bool:
    results = judge_tier_budgets(data, budgets_path)
    say("\n".join(budgets_table(results)))
    # A budget with no benchmark behind it is a warning locally (Redis or PostgreSQL may be
    # absent, and those benchmarks skip) and a failure under CI=true, where nothing may pass
    # by being skipped.
    in_ci = os.environ.get("CI", "").lower() == "true"
    broken = False
    for r in results:
        if r.verdict == "no_data":
            say(f"{'FAIL' if in_ci else 'WARNING'}: no benchmark ran for budget {r.budget_id}")
            broken |= in_ci
    for r in results:
        if r.verdict == "fail":
            broken = True
            say(
                f"FAIL: {r.benchmark} p{r.percentile:g} {fmt_ms(r.measured_ms)} is over the "
                f"budget {r.budget_id} (< {r.max_ms:g} ms)"
            )
    return broken


def _regressed(
    baseline: dict[str, Any], data: dict[str, Any], alpha: float, min_effect: float, say: Any
) -> bool:
    changes = compare_benchmarks(baseline, data, alpha=alpha, min_effect=min_effect)
    say()
    say("\n".join(compare_table(changes)))
    say(
        "(anchor: how the benchmark's physical anchor moved between the runs; an anchor "
        "that moved as much points at the machine, not the code)"
    )
    regressions = [c for c in changes if c.verdict == "regression"]
    for c in regressions:
        say(
            f"FAIL: {c.name} regressed: median {fmt_ms(c.base_median_ms)} -> "
            f"{fmt_ms(c.median_ms)} (p = {c.p_value:.2g})"
        )
    return bool(regressions)


def main(argv: list[str]) -> int:
    """Run ``velro-perf bench``; return its exit code."""
    if argv[:1] == ["--"]:  # `velro-perf bench -- --quick`: argparse REMAINDER keeps the "--"
        argv = argv[1:]
    own, extra = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    try:
        args = build_parser().parse_args(own)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if not 0 < args.alpha < 1 or args.min_effect < 0:
        raise UsageError(
            f"--alpha {args.alpha:g} / --min-effect {args.min_effect:g}: give an alpha between "
            "0 and 1 (like 0.01) and a min effect of 0 or more (0.10 for 10 %)"
        )
    if args.throughput:
        return _throughput(extra, args.out)
    root = clone_root()  # before the baseline and the budgets: without a clone, nothing runs
    baseline = None
    if args.compare is not None:
        baseline = _read_json(args.compare, "baseline")  # fail early, before the long run
    if not args.budgets.is_file():
        raise ConfigError(
            f"budgets file {str(args.budgets)!r} does not exist; give fixtures/budgets.toml"
        )

    bench_dir = args.out / "bench"
    bench_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    json_path = (bench_dir / f"{stamp}.json").resolve()
    cmd = pytest_command(json_path, quick=args.quick, extra=extra, root=root)
    print("$ " + " ".join(cmd), flush=True)
    pytest_code = subprocess.run(cmd, cwd=root, check=False).returncode  # noqa: S603
    if not json_path.exists():
        print(f"velro-perf bench: pytest exited {pytest_code} without writing {json_path}")
        return EXIT_FAIL
    shutil.copyfile(json_path, bench_dir / "latest.json")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(json_path, args.json)
    data = _read_json(json_path, "benchmark JSON")

    code = judge(
        data,
        budgets_path=args.budgets,
        baseline=baseline,
        pytest_code=pytest_code,
        alpha=args.alpha,
        min_effect=args.min_effect,
    )
    print(f"\nbenchmark JSON: {json_path} (copied to {bench_dir / 'latest.json'})")
    return code


def run_as_script(argv: list[str]) -> int:
    """``python -m velro_perf.bench``: main() with its errors printed, not raised."""
    try:
        return main(argv)
    except VelroPerfError as exc:
        print(f"velro-perf bench: error: {exc}", file=sys.stderr)
        return exc.exit_code

"""The `velro-perf` command line: run, gate, report, export, compare, calibrate and bench.

Exit codes (docs/run-format.md): 0 every judged budget passes, 1 a budget fails or is
inconclusive, 2 bad usage or configuration, 3 an invalid run. User errors are one line on
stderr naming the bad value and the fix, never a traceback (see velro_perf.errors).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from velro_perf.errors import EXIT_FAIL, EXIT_PASS, EXIT_USAGE, UsageError, VelroPerfError
from velro_perf.paths import budgets_file, shapes_file
from velro_perf.suitedata import resolve_api_file

__all__ = ["build_parser", "main"]

PROG = "velro-perf"


def _whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of requests per second"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 requests per second")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port between 1 and 65535")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Load-test an authentication backend on this machine and gate on the PRD "
        "budgets. Exit codes: 0 pass, 1 a budget fails, 2 bad usage, 3 invalid run.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="run a load shape and judge it against the budgets")
    run.add_argument(
        "--shape", required=True, help="load shape in fixtures/shapes.toml, e.g. smoke"
    )
    run.add_argument(
        "--target",
        metavar="URL",
        help="a loopback URL of a running backend; without it the reference service is started",
    )
    run.add_argument(
        "--api",
        type=Path,
        metavar="FILE",
        help="API file describing the target's operations, or the name of one the suite ships "
        "(contract, the default: CONTRACT.md; fastapi-users; django-oauth-toolkit); see "
        "docs/api-file.md",
    )
    run.add_argument(
        "--users-file",
        type=Path,
        metavar="FILE",
        help="CSV of existing users (email,password[,id]) to sign in as instead of creating "
        "them, for a backend without open sign-up; see docs/api-file.md",
    )
    run.add_argument(
        "--service-profile",
        choices=["fixed", "degraded"],
        help="profile of the reference service (default fixed)",
    )
    run.add_argument(
        "--processes",
        type=_whole,
        default=None,
        metavar="N",
        help="Locust processes (master + workers via Locust's --processes; -1: one per core; "
        "default: the shape's, else 1)",
    )
    run.add_argument(
        "--out", type=Path, default=Path("runs"), help="folder of run folders (default ./runs)"
    )
    run.add_argument(
        "--open-rate",
        type=_rate,
        metavar="RPS",
        help="open model: start requests at this rate whatever the latency",
    )
    run.add_argument(
        "--samples",
        choices=["exact", "histogram", "both", "auto"],
        default="auto",
        help="exact: every request as a row; histogram: per second and endpoint an HdrHistogram "
        "(3 significant digits) from each worker; both: the two of the same requests (the "
        "report uses the rows); auto (default): exact below the master's measured ceiling "
        "(docs/performance-scale.md)",
    )
    run.add_argument(
        "--database",
        metavar="sqlite|postgres|URL",
        help="reference service database: sqlite in the run folder (default), postgres "
        "(a database of its own on 127.0.0.1:5432, dropped after) or a SQLAlchemy URL",
    )
    run.add_argument(
        "--no-redis",
        dest="use_redis",
        action="store_false",
        help="do not give the reference service Redis even when 127.0.0.1:6379 answers",
    )
    run.add_argument(
        "--port", type=_port, help="port for the reference service (default: a free one)"
    )
    run.add_argument(
        "--workers",
        type=_whole,
        default=None,
        help="reference service worker processes (default: the shape's, else 1)",
    )
    run.add_argument("--budgets", type=Path, default=budgets_file(), metavar="FILE")
    run.add_argument("--shapes", type=Path, default=shapes_file(), metavar="FILE")
    run.add_argument(
        "--startup-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds to wait for the reference service's /health (default 60)",
    )
    run.add_argument(
        "--max-duration",
        type=float,
        metavar="S",
        help="stop Locust after this many seconds even if the shape has not ended",
    )

    gate = sub.add_parser("gate", help="re-judge a finished run and exit with its verdict")
    gate.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    gate.add_argument("--budgets", type=Path, default=budgets_file(), metavar="FILE")

    report = sub.add_parser("report", help="re-render a run's report.html")
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    report.add_argument(
        "--against",
        type=Path,
        metavar="DEGRADED_RUN",
        help="a run of the degraded profile to show beside this one",
    )
    report.add_argument("--bench-json", type=Path, metavar="FILE", help="pytest-benchmark JSON")
    report.add_argument("--out", type=Path, metavar="FILE", help="where to write the HTML")

    export = sub.add_parser("export", help="write a run's samples in another format")
    export.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    export.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        nargs="?",
        const=Path("-"),
        required=True,
        help="write every sample as CSV (the columns of docs/run-format.md) to FILE, "
        "by default RUN_DIR/samples.csv",
    )

    compare = sub.add_parser("compare", help="compare two runs; exit 1 on a regression")
    compare.add_argument("baseline", type=Path, metavar="BASELINE")
    compare.add_argument("current", type=Path, metavar="CURRENT")
    compare.add_argument("--out", type=Path, metavar="FILE", help="where to write the HTML")

    calibrate = sub.add_parser(
        "calibrate",
        help="measure the suite against a target whose latency law is known",
        description="Run the suite against a tiny target of its own (a known latency law), "
        "closed and open model; print p50/p95/p99 beside the law with the error; write "
        "OUT/calibration.json, which every report of this machine shows. Exit 0 within the "
        "bound, 1 outside it.",
    )
    calibrate.add_argument("--out", type=Path, default=Path("runs"), metavar="DIR")
    calibrate.add_argument("--duration", type=float, default=20.0, metavar="SECONDS")
    calibrate.add_argument("--rate", type=_rate, default=200.0, metavar="RPS")
    _add_capacity(sub)
    api = sub.add_parser("api", help="work with API files (docs/api-file.md)")
    api_sub = api.add_subparsers(dest="api_command", metavar="ACTION", required=True)
    check = api_sub.add_parser(
        "check",
        help="try each operation of an API file once against a running backend; exit 1 when "
        "one does not answer as described",
    )
    check.add_argument(
        "api_file",
        type=Path,
        metavar="FILE",
        help="an API file, or the name of one the suite ships (contract, fastapi-users, ...)",
    )
    check.add_argument("--target", required=True, metavar="URL", help="a loopback URL")
    check.add_argument(
        "--users-file",
        type=Path,
        metavar="FILE",
        help="CSV of existing users (email,password[,id]): sign in as two of them instead of "
        "signing two up",
    )
    check.add_argument(
        "--service-key",
        default=os.environ.get("VELRO_PERF_SERVICE_KEY") or None,
        metavar="KEY",
        help="a service key for service_user (default $VELRO_PERF_SERVICE_KEY)",
    )

    bench = sub.add_parser(
        "bench", help="run the microbenchmarks (velro_perf.bench)", add_help=False
    )
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    return parser


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number; give digits, e.g. 5000 (users) or 250.5 (requests/s)"
        ) from None
    return value


def _add_capacity(sub: Any) -> None:
    cap = sub.add_parser(
        "capacity",
        help="find the largest load the target holds within every budget",
        description="Search the largest level (users, or requests/s with --open) at which "
        "every latency and error budget passes: steps of ramp, warm-up and hold, each hold "
        "judged like a run; a geometric climb until a budget fails, then bisection to "
        "--ratio. Writes summary.json (capacity, steps), summary.md and report.html (the "
        "knee). Exit 0 when the capacity reaches --require (or, without it, when a level "
        "passed), 1 when not, 2 bad usage, 3 no answer (invalid). See docs/capacity.md.",
    )
    cap.add_argument(
        "--target",
        metavar="URL",
        help="a loopback URL of a running backend; without it the reference service is started",
    )
    cap.add_argument(
        "--api",
        type=Path,
        metavar="FILE",
        help="API file of the target (default targets/contract.toml)",
    )
    cap.add_argument(
        "--shape",
        default="capacity",
        help="the shape of one step: its warm-up, "
        "last stage's hold and users, spawn rate, workload (default capacity)",
    )
    cap.add_argument(
        "--workload", type=Path, metavar="FILE", help="workload file instead of the shape's"
    )
    cap.add_argument(
        "--fixtures",
        type=Path,
        metavar="FILE",
        help="with --target: the seed users as `velro seed --out` writes them (default: "
        "provisioned through the target's API)",
    )
    cap.add_argument(
        "--target-pid",
        type=_whole,
        metavar="PID",
        help="with --target: its root process on this machine, whose CPU (and its children's) "
        "is the service's in the CPU split and the laws",
    )
    cap.add_argument("--open", action="store_true", help="open model: levels are requests/s")
    cap.add_argument(
        "--start",
        type=_number,
        metavar="LEVEL",
        help="first level (default: the shape's users, or their rate with --open)",
    )
    cap.add_argument("--factor", type=_number, default=2.0, help="climb ratio (default 2)")
    cap.add_argument(
        "--ratio",
        type=_number,
        default=0.10,
        help="stop bisecting when the "
        "failed level is within this share of the passed one (default 0.10)",
    )
    cap.add_argument("--max-level", type=_number, metavar="LEVEL", help="highest level to try")
    cap.add_argument(
        "--hold",
        type=_number,
        metavar="S",
        help="seconds judged per step (default: the shape's last stage)",
    )
    cap.add_argument(
        "--warmup",
        type=_number,
        metavar="S",
        help="seconds after the ramp, not judged (default: the shape's warm-up)",
    )
    cap.add_argument("--spawn-rate", type=_number, metavar="N", help="users started a second")
    cap.add_argument(
        "--extensions",
        type=_whole,
        default=2,
        metavar="N",
        help="times an inconclusive hold is lengthened before it counts as not passed (2)",
    )
    cap.add_argument(
        "--max-time",
        type=_number,
        default=28 * 60.0,
        metavar="S",
        help="the whole search stops within this many seconds (default 1680)",
    )
    cap.add_argument(
        "--require",
        type=_number,
        metavar="N",
        help="exit 1 unless the capacity found is at least N",
    )
    cap.add_argument("--out", type=Path, default=Path("runs"), help="folder of run folders")
    cap.add_argument("--processes", type=_whole, metavar="N", help="Locust processes")
    cap.add_argument("--workers", type=_whole, metavar="N", help="reference service workers")
    cap.add_argument("--database", metavar="sqlite|postgres|URL", help="reference database")
    cap.add_argument(
        "--no-redis",
        dest="use_redis",
        action="store_false",
        help="no Redis for the reference service",
    )
    cap.add_argument("--budgets", type=Path, default=budgets_file(), metavar="FILE")
    cap.add_argument("--shapes", type=Path, default=shapes_file(), metavar="FILE")


def _capacity(args: argparse.Namespace) -> int:
    from velro_perf.capacity import CapacityOptions, execute_capacity

    return execute_capacity(
        CapacityOptions(
            target=args.target,
            api_file=resolve_api_file(args.api) if args.api is not None else None,
            shape=args.shape,
            workload_file=args.workload,
            fixtures=args.fixtures,
            target_pid=args.target_pid,
            open_model=args.open,
            start=args.start,
            factor=args.factor,
            ratio=args.ratio,
            max_level=args.max_level,
            hold_s=args.hold,
            warmup_s=args.warmup,
            spawn_rate=args.spawn_rate,
            extensions=args.extensions,
            max_time_s=args.max_time,
            require=args.require,
            out=args.out,
            budgets_file=args.budgets,
            shapes_file=args.shapes,
            processes=args.processes,
            workers=args.workers,
            database=args.database,
            use_redis=args.use_redis,
        )
    )


def _run(args: argparse.Namespace) -> int:
    from velro_perf.run import RunOptions, execute_run

    return execute_run(
        RunOptions(
            shape=args.shape,
            target=args.target,
            api_file=resolve_api_file(args.api) if args.api is not None else None,
            users_file=args.users_file,
            service_profile=args.service_profile,
            processes=args.processes,
            out=args.out,
            open_rate=args.open_rate,
            database=args.database,
            budgets_file=args.budgets,
            shapes_file=args.shapes,
            port=args.port,
            workers=args.workers,
            use_redis=args.use_redis,
            startup_timeout_s=args.startup_timeout,
            max_duration_s=args.max_duration,
            samples=args.samples,
        )
    )


def _api(args: argparse.Namespace) -> int:
    from velro_perf.apicheck import run_api_check
    from velro_perf.target import require_loopback

    target = require_loopback(args.target)
    users = str(args.users_file) if args.users_file else None
    api_file = str(resolve_api_file(args.api_file))
    return run_api_check(api_file, target, args.service_key, sys.stdout, users_file=users)


def _gate(args: argparse.Namespace) -> int:
    from velro_perf.gate import gate_run
    from velro_perf.run import print_verdict

    summary, code = gate_run(args.run_dir, args.budgets)
    print_verdict(summary)
    return code


def _report(args: argparse.Namespace) -> int:
    from velro_perf.gate import check_run_dir, render_run

    run_dir = check_run_dir(args.run_dir)
    against = check_run_dir(args.against) if args.against is not None else None
    written = render_run(run_dir, out=args.out, story_baseline=against, bench_json=args.bench_json)
    print(f"report: {written}")
    return EXIT_PASS


def _export(args: argparse.Namespace) -> int:
    from velro_perf.gate import check_run_dir
    from velro_perf.reports.samplefiles import sample_files, samples_csv
    from velro_perf.reports.samples import SampleStore

    run_dir = check_run_dir(args.run_dir)
    if not sample_files(run_dir):
        raise UsageError(
            f"{run_dir} has no samples/ folder of Parquet samples; give a run recorded by "
            "velro-perf run (a run with samples.csv already has its CSV)"
        )
    out = samples_csv(run_dir) if args.csv == Path("-") else args.csv
    rows = SampleStore(run_dir).export_csv(out)
    print(f"samples: {rows:,} rows written to {out}")
    return EXIT_PASS


def _compare(args: argparse.Namespace) -> int:
    from velro_perf.compare import compare_command

    return compare_command(args.baseline, args.current, args.out, sys.stdout)


def _calibrate(args: argparse.Namespace) -> int:
    from velro_perf.calibration import calibrate, format_calibration

    if args.duration < 5:
        raise UsageError(f"--duration {args.duration:g} is too short; give 5 seconds or more")
    result = calibrate(args.out, duration_s=args.duration, rate=args.rate)
    print(format_calibration(result))
    print(f"written to {args.out / 'calibration.json'}")
    return EXIT_PASS if result["within_bound"] else EXIT_FAIL


def _bench(args: argparse.Namespace) -> int:
    return _bench_argv(list(args.bench_args))


def _bench_argv(argv: list[str]) -> int:
    from velro_perf.bench import main as bench_main

    return bench_main(argv)


_COMMANDS = {
    "run": _run,
    "api": _api,
    "gate": _gate,
    "report": _report,
    "compare": _compare,
    "export": _export,
    "bench": _bench,
    "calibrate": _calibrate,
    "capacity": _capacity,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default sys.argv[1:]), run the command, return its exit code."""
    arguments = list(argv) if argv is not None else sys.argv[1:]
    try:
        if arguments[:1] == ["bench"]:
            # bench has its own parser: it gets every argument as given (argparse's REMAINDER
            # would refuse `velro-perf bench --help`)
            return _bench_argv(arguments[1:])
        try:
            args = build_parser().parse_args(arguments)
        except SystemExit as exc:  # argparse: --help is 0, a usage error 2
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        return _COMMANDS[args.command](args)
    except VelroPerfError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130

"""`velro-perf bench`: run the microbenchmarks, gate on the tier budgets, compare with a baseline.

    velro-perf bench [--quick] [--compare BASELINE_JSON [--alpha 0.01] [--min-effect 0.10]]
                     [--json OUT] [--budgets FILE] [--out DIR] [-- PYTEST_ARGS...]
    velro-perf bench --throughput [-- THROUGHPUT_ARGS...]   (benchmarks/throughput.py)

pytest-benchmark runs ``benchmarks/`` and writes its JSON to ``<out>/bench/<UTC time>.json``,
copied to ``<out>/bench/latest.json`` where the HTML report looks. ``--benchmark-json``
always carries every round's time (``stats.data``; ``--benchmark-save-data`` only matters
for ``--benchmark-save``), so the tier budgets are judged on the p99 of the rounds and the
comparison tests the rounds themselves, not summary figures. A round is one call, or, for a
call shorter than the minimum round time, the mean of ``iter`` calls (pytest-benchmark's
calibration; the table shows ``iter``): the p99 of an L1 read is then a p99 of such means,
three orders of magnitude under its 5 ms bound either way.

Exit codes: 0 all well; 1 a benchmark failed, a tier budget is broken, or ``--compare`` found
a regression; 2 bad usage (a missing file, a budgets file that does not parse).

A regression needs both a significant test and a minimum effect: the rounds of the current
run are stochastically greater than the baseline's (one-sided Mann-Whitney U, p < 0.01, which
assumes neither normality nor equal variances, and round times are neither) *and* the median
is at least 10 % slower. The test alone flags a 1 % shift once there are enough rounds; the
effect alone flags noise on a busy machine.

What neither can fix: the test takes a run's rounds as independent, and rounds taken back to
back are not when the machine is shared; a neighbour's burst moves a whole benchmark. On the
2-core machine this was written on, two full runs of the same code a minute apart had 13 of
40 benchmarks "regress" by 11 to 88 %. Compare on a quiet, dedicated runner; the table shows
beside each benchmark how its physical anchor moved, which tells the machine from the code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from velro_perf.errors import (
    EXIT_FAIL,
    EXIT_PASS,
    EXIT_USAGE,
    ConfigError,
    UsageError,
    VelroPerfError,
)
from velro_perf.paths import budgets_file, project_root

__all__ = [
    "ALPHA",
    "MIN_EFFECT",
    "BudgetResult",
    "Change",
    "anchor_ratios",
    "build_parser",
    "compare_benchmarks",
    "judge",
    "judge_tier_budgets",
    "main",
    "percentile_ms",
    "pytest_command",
]

ALPHA = 0.01
MIN_EFFECT = 0.10
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


@dataclass(frozen=True)
class BudgetResult:
    """One microbenchmark budget judged on one benchmark."""

    budget_id: str
    benchmark: str
    percentile: float
    measured_ms: float | None
    max_ms: float
    rounds: int

    @property
    def verdict(self) -> str:
        if self.measured_ms is None:
            return "no_data"
        return "pass" if self.measured_ms < self.max_ms else "fail"


@dataclass(frozen=True)
class Change:
    """One benchmark in the baseline and the current run."""

    name: str
    base_median_ms: float | None
    median_ms: float | None
    p_value: float | None
    verdict: str  # regression | faster | unchanged | new | gone | too_few_rounds
    anchor: str | None = None
    anchor_ratio: float | None = None  # the anchor's median now over its median then

    @property
    def ratio(self) -> float | None:
        if not self.base_median_ms or self.median_ms is None:
            return None
        return self.median_ms / self.base_median_ms


# -- reading pytest-benchmark JSON -----------------------------------------------------------


def _benches(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in data.get("benchmarks", []) if isinstance(b, dict)]


def _rounds_s(bench: dict[str, Any]) -> list[float]:
    raw = (bench.get("stats") or {}).get("data")
    return [float(x) for x in raw] if isinstance(raw, list) else []


def _median_ms(bench: dict[str, Any]) -> float | None:
    median = (bench.get("stats") or {}).get("median")
    return float(median) * 1e3 if isinstance(median, int | float) else None


def percentile_ms(bench: dict[str, Any], q: float) -> float | None:
    """The q-th percentile of a benchmark's rounds in ms (nearest rank), None without rounds."""
    rounds = sorted(_rounds_s(bench))
    if not rounds:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(rounds)))
    return rounds[rank - 1] * 1e3


def _base_name(bench: dict[str, Any]) -> str:
    # "test_l1_hit[x]" -> "test_l1_hit": budgets name the test, not its parameters
    return str(bench.get("name", "")).split("[", 1)[0]


def anchor_ratios(data: dict[str, Any]) -> dict[str, float]:
    """Per benchmark with an ``anchor`` in extra_info: its median over the anchor's median."""
    medians = {str(b.get("name")): _median_ms(b) for b in _benches(data)}
    out = {}
    for b in _benches(data):
        anchor = (b.get("extra_info") or {}).get("anchor")
        mine, theirs = medians.get(str(b.get("name"))), medians.get(str(anchor))
        if isinstance(anchor, str) and mine is not None and theirs:
            out[str(b.get("name"))] = mine / theirs
    return out


# -- the tier budgets ------------------------------------------------------------------------


def _microbenchmark_budgets(path: Path) -> list[tuple[str, tuple[str, ...], float, float]]:
    """(id, benchmarks, percentile, max ms) of every microbenchmark budget in the file."""
    try:
        from reports.budgets import load_budgets
        from reports.errors import BudgetError
    except ModuleNotFoundError:  # reports not installed: read the file ourselves
        return _parse_microbenchmark_budgets(path)
    try:
        budgets = load_budgets(path)
    except BudgetError as exc:
        raise ConfigError(str(exc)) from exc
    # load_budgets has checked that a microbenchmark budget has a max and a percentile
    return [
        (b.id, tuple(b.benchmarks), float(b.percentile or 99.0), float(b.max or 0.0))
        for b in budgets.of_kind("microbenchmark")
    ]


def _parse_microbenchmark_budgets(path: Path) -> list[tuple[str, tuple[str, ...], float, float]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"budgets file {str(path)!r} cannot be read ({exc}); give fixtures/budgets.toml"
        ) from exc
    out = []
    for entry in data.get("budget", []):
        if isinstance(entry, dict) and entry.get("kind") == "microbenchmark":
            out.append(
                (
                    str(entry["id"]),
                    tuple(entry.get("benchmarks", ())),
                    float(entry.get("percentile", 99.0)),
                    float(entry["max"]),
                )
            )
    return out


def judge_tier_budgets(data: dict[str, Any], budgets_path: Path) -> list[BudgetResult]:
    """Every microbenchmark budget against every benchmark it names that ran."""
    results = []
    benches = _benches(data)
    for budget_id, names, q, max_ms in _microbenchmark_budgets(budgets_path):
        matches = [b for b in benches if _base_name(b) in names]
        if not matches:
            results.append(BudgetResult(budget_id, ", ".join(names), q, None, max_ms, 0))
        for b in matches:
            results.append(
                BudgetResult(
                    budget_id,
                    str(b.get("name")),
                    q,
                    percentile_ms(b, q),
                    max_ms,
                    len(_rounds_s(b)),
                )
            )
    return results


# -- comparison ------------------------------------------------------------------------------


def compare_benchmarks(
    baseline: dict[str, Any],
    current: dict[str, Any],
    *,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
) -> list[Change]:
    """Each benchmark of either run, judged on its rounds (see the module docstring)."""
    from scipy.stats import mannwhitneyu

    base = {str(b.get("name")): b for b in _benches(baseline)}
    cur = {str(b.get("name")): b for b in _benches(current)}
    changes = []
    for name in sorted(set(base) | set(cur)):
        b, c = base.get(name), cur.get(name)
        if b is None or c is None:
            changes.append(
                Change(
                    name,
                    _median_ms(b) if b else None,
                    _median_ms(c) if c else None,
                    None,
                    "new" if b is None else "gone",
                )
            )
            continue
        rb, rc = _rounds_s(b), _rounds_s(c)
        mb, mc = _median_ms(b), _median_ms(c)
        if len(rb) < 2 or len(rc) < 2 or mb is None or mc is None:
            changes.append(Change(name, mb, mc, None, "too_few_rounds"))
            continue
        slower = mannwhitneyu(rc, rb, alternative="greater").pvalue
        faster = mannwhitneyu(rc, rb, alternative="less").pvalue
        if slower < alpha and mc >= mb * (1.0 + min_effect):
            verdict, p = "regression", float(slower)
        elif faster < alpha and mc <= mb * (1.0 - min_effect):
            verdict, p = "faster", float(faster)
        else:
            verdict, p = "unchanged", float(min(slower, faster))
        changes.append(Change(name, mb, mc, p, verdict))
    # Beside each benchmark, how its physical anchor moved between the two runs: when the
    # anchor slowed down as much, the machine changed (a busy neighbour), not the code.
    by_name = {ch.name: ch for ch in changes}
    out: list[Change] = []
    for ch in changes:
        anchor = ((cur.get(ch.name) or {}).get("extra_info") or {}).get("anchor")
        if not isinstance(anchor, str):
            out.append(ch)
            continue
        moved = by_name[anchor].ratio if anchor in by_name else None
        out.append(replace(ch, anchor=anchor, anchor_ratio=moved))
    return out


# -- printing --------------------------------------------------------------------------------


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.0f} ns"
    if value < 1.0:
        return f"{value * 1e3:.1f} µs"
    return f"{value:.2f} ms"


def _fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:.1f}x" if ratio >= 0.95 else f"{ratio:.2g}x"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def results_table(data: dict[str, Any]) -> list[str]:
    """Median, p99, rounds and the anchor ratio (the overhead over the physical anchor)."""
    ratios = anchor_ratios(data)
    rows = [["benchmark", "tier", "median", "p99", "rounds", "iter", "anchor", "x anchor"]]
    for b in _benches(data):
        name = str(b.get("name"))
        extra = b.get("extra_info") or {}
        ratio = ratios.get(name)
        rows.append(
            [
                name,
                str(extra.get("tier") or "-"),
                _fmt_ms(_median_ms(b)),
                _fmt_ms(percentile_ms(b, 99)),
                str(len(_rounds_s(b))),
                str((b.get("stats") or {}).get("iterations", "-")),
                str(extra.get("anchor") or "-"),
                _fmt_ratio(ratio),
            ]
        )
    return _table(rows)


def budgets_table(results: list[BudgetResult]) -> list[str]:
    rows = [["budget", "benchmark", "measured", "bound", "rounds", "verdict"]]
    for r in results:
        rows.append(
            [
                r.budget_id,
                r.benchmark,
                f"p{r.percentile:g} {_fmt_ms(r.measured_ms)}",
                f"< {r.max_ms:g} ms",
                str(r.rounds),
                r.verdict,
            ]
        )
    return _table(rows)


def compare_table(changes: list[Change]) -> list[str]:
    def pct(ratio: float | None) -> str:
        return f"{100.0 * (ratio - 1.0):+.1f} %" if ratio is not None else "-"

    rows = [
        ["benchmark", "base median", "median", "change", "p (Mann-Whitney)", "verdict", "anchor"]
    ]
    for c in changes:
        rows.append(
            [
                c.name,
                _fmt_ms(c.base_median_ms),
                _fmt_ms(c.median_ms),
                pct(c.ratio),
                f"{c.p_value:.2g}" if c.p_value is not None else "-",
                c.verdict,
                pct(c.anchor_ratio),
            ]
        )
    return _table(rows)


# -- the command -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="velro-perf bench",
        description="Run the pytest-benchmark microbenchmarks of benchmarks/, gate on the tier "
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


def pytest_command(json_path: Path, *, quick: bool, extra: Sequence[str] = ()) -> list[str]:
    """The pytest command line that runs every benchmark and writes the JSON."""
    return [
        sys.executable,
        "-m",
        "pytest",
        str(project_root() / "benchmarks"),
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
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{what} {str(path)!r} does not exist; give a JSON that velro-perf bench wrote"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{what} {str(path)!r} is not pytest-benchmark JSON ({exc}); re-run velro-perf bench"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ConfigError(
            f"{what} {str(path)!r} has no 'benchmarks' list; is it pytest-benchmark JSON?"
        )
    return data


def _throughput(extra: Sequence[str], runs: Path) -> int:
    """``python -m benchmarks.throughput``, writing into this runs folder unless told otherwise."""
    args = list(extra)
    if "--out" not in args:
        args += ["--out", str((runs / "bench" / "throughput.json").resolve())]
    cmd = [sys.executable, "-m", "benchmarks.throughput", *args]
    # run from the project root: benchmarks/ is a folder of the project, not an installed package
    return subprocess.run(cmd, cwd=project_root(), check=False).returncode  # noqa: S603


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

    code = EXIT_PASS
    if pytest_code != 0:
        say(f"FAIL: pytest exited {pytest_code}: a benchmark failed or errored (see above)")
        code = EXIT_FAIL

    results = judge_tier_budgets(data, budgets_path)
    say("\n".join(budgets_table(results)))
    # A budget with no benchmark behind it is a warning locally (Redis or PostgreSQL may be
    # absent, and those benchmarks skip) and a failure under CI=true, where nothing may pass
    # by being skipped.
    in_ci = os.environ.get("CI", "").lower() == "true"
    broken = [r for r in results if r.verdict == "fail" or (in_ci and r.verdict == "no_data")]
    for r in results:
        if r.verdict == "no_data":
            say(f"{'FAIL' if in_ci else 'WARNING'}: no benchmark ran for budget {r.budget_id}")
    for r in broken:
        if r.verdict != "fail":
            continue
        say(
            f"FAIL: {r.benchmark} p{r.percentile:g} {_fmt_ms(r.measured_ms)} is over the "
            f"budget {r.budget_id} (< {r.max_ms:g} ms)"
        )
    if broken:
        code = EXIT_FAIL

    if baseline is not None:
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
                f"FAIL: {c.name} regressed: median {_fmt_ms(c.base_median_ms)} -> "
                f"{_fmt_ms(c.median_ms)} (p = {c.p_value:.2g})"
            )
        if regressions:
            code = EXIT_FAIL

    return code


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
    cmd = pytest_command(json_path, quick=args.quick, extra=extra)
    print("$ " + " ".join(cmd), flush=True)
    pytest_code = subprocess.run(cmd, cwd=project_root(), check=False).returncode  # noqa: S603
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


if __name__ == "__main__":
    try:
        raise SystemExit(main(sys.argv[1:]))
    except VelroPerfError as exc:
        print(f"velro-perf bench: error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None

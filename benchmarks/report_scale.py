"""The report's cost as a run grows: wall time and peak memory of `velro-perf report`.

For each size and mode, a synthetic run (reports.synthetic.write_synthetic_run: samples in
Parquet, or the histograms of histogram mode) is written, then `velro-perf report RUN` runs
under `/usr/bin/time -v` in a fresh process; the table gives its wall time and peak resident
memory. With ``--csv-code COMMIT``, the same run
of the smallest size is also written as samples.csv and judged by the code of that commit
(checked out with `git archive` into a temporary folder), and its budget figures are compared
with this code's: they must be the same.

    flock /tmp/velro-load.lock python -m benchmarks.report_scale --sizes 1e6,1e7,3e7 \\
        --csv-code 572db8b --modes parquet,histogram

A heavy load (30 million requests is ~1 GB of Parquet and a minute of CPU): run it under the
load lock. The figures go to docs/performance-scale.md with the command and commit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velro_perf.reports.synthetic import write_synthetic_run

PROJECT = Path(__file__).resolve().parents[1]
SECONDS_PER_MILLION = 360.0  # a million requests over 6 minutes: ~2,800 requests/s


@dataclass(frozen=True)
class Cost:
    mode: str
    requests: int
    wall_s: float
    peak_rss_mb: float
    samples_mb: float


def _du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MB) of a command, from /usr/bin/time -v; and its output."""
    done = subprocess.run(  # noqa: S603 - our own commands
        ["/usr/bin/time", "-v", *argv], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0 and "Exit status: 0" not in done.stderr:
        # velro-perf report exits 0; anything else is a failure to report
        raise RuntimeError(f"{argv} failed: {done.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", done.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if wall is None or rss is None:
        raise RuntimeError(f"no figures from /usr/bin/time: {done.stderr[-2000:]}")
    parts = [float(p) for p in wall.group(1).split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    return seconds, int(rss.group(1)) / 1024, done.stdout


def _write_run(root: Path, n: int, samples_format: str = "parquet") -> Path:
    run = root / f"20261206-000000-steady-fixed-{n}-{samples_format}"
    duration = max(600.0, SECONDS_PER_MILLION * n / 1e6)
    write_synthetic_run(
        run, n=n, duration_s=duration, warmup_s=60.0, seed=11, samples_format=samples_format
    )
    return run


def report_cost(root: Path, n: int, samples_format: str) -> Cost:
    run = _write_run(root, n, samples_format)
    velro_perf = str(Path(sys.executable).with_name("velro-perf"))
    wall, rss, _ = _timed([velro_perf, "report", str(run)])
    folder = run / ("histograms" if samples_format == "histogram" else "samples")
    mode = "histogram" if samples_format == "histogram" else "exact"
    cost = Cost(mode, n, wall, rss, _du_mb(folder))
    shutil.rmtree(run)
    return cost


PROBE = """
import json, sys
from pathlib import Path
from velro_perf.reports.analysis import summarize
from velro_perf.reports.budgets import load_budgets
s = summarize(Path(sys.argv[1]), load_budgets(sys.argv[2]))
print(json.dumps({b["id"]: [b["measured"], b["ci_low"], b["ci_high"], b["samples"],
                            str(b["verdict"])] for b in s["budgets"]}))
"""


def csv_code_figures(root: Path, n: int, commit: str) -> dict[str, Any]:
    """The budget figures of the code of `commit` on samples.csv against this code's on
    Parquet, for the same synthetic run of n requests."""
    code = root / "code"
    code.mkdir()
    git, tar = shutil.which("git") or "git", shutil.which("tar") or "tar"
    archive = subprocess.run(  # noqa: S603 - git of this repository
        [git, "archive", commit], cwd=PROJECT, capture_output=True, check=True
    )
    subprocess.run([tar, "-x", "-C", str(code)], input=archive.stdout, check=True)  # noqa: S603
    legacy = _write_run(root, n, "csv")
    parquet = _write_run(root, n, "parquet")
    budgets = str(PROJECT / "fixtures" / "budgets.toml")
    figures = {}
    for label, run, path in (("csv", legacy, code), ("parquet", parquet, PROJECT)):
        env = {**os.environ, "PYTHONPATH": str(path)}
        wall, rss, out = _timed([sys.executable, "-c", PROBE, str(run), budgets], env)
        figures[label] = {"wall_s": wall, "peak_rss_mb": rss, "budgets": json.loads(out)}
    figures["same"] = figures["csv"]["budgets"] == figures["parquet"]["budgets"]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7,3e7", help="requests, comma-separated")
    parser.add_argument("--csv-code", metavar="COMMIT", help="compare with this commit's code")
    parser.add_argument("--tmp", type=Path, default=None, help="where to write the runs")
    parser.add_argument(
        "--modes", default="parquet,histogram", help="samples formats: parquet, histogram"
    )
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="velro-scale-", dir=args.tmp) as tmp:
        root = Path(tmp)
        if args.csv_code:
            started = time.perf_counter()
            result = csv_code_figures(root, sizes[0], args.csv_code)
            print(json.dumps(result, indent=1))
            print(f"# compared in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        print("| mode | requests | report wall (s) | peak RSS (MB) | on disk (MB) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for samples_format in args.modes.split(","):
            for n in sizes:
                c = report_cost(root, n, samples_format)
                print(
                    f"| {c.mode} | {c.requests:,} | {c.wall_s:.1f} | {c.peak_rss_mb:,.0f} | "
                    f"{c.samples_mb:,.0f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

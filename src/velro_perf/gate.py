"""Judging a run against the budgets, through the reports package, and the exit code it gives.

The figures and verdicts are computed by `reports.analysis` from the run folder's files alone;
this module only wires it: load the budgets, summarise, write summary.json and junit.xml, and
turn the verdict into an exit code, turning the reports package's errors into ConfigError.
"""

from __future__ import annotations

from pathlib import Path

from velro_perf.errors import ConfigError
from velro_perf.reports.analysis import summarize, write_summary
from velro_perf.reports.budgets import Budgets
from velro_perf.reports.budgets import load_budgets as _load_budgets
from velro_perf.reports.errors import BudgetError, ReportError
from velro_perf.reports.history import append_history
from velro_perf.reports.junit import write_junit
from velro_perf.reports.markdown import write_markdown
from velro_perf.reports.render import render_report
from velro_perf.reports.runfiles import Summary, Verdict
from velro_perf.reports.runfolder import CONFIG, META

__all__ = [
    "append_history",
    "check_run_dir",
    "exit_code_of",
    "gate_run",
    "judge_run",
    "load_budgets",
    "render_run",
]


_JUDGED_EXITS = frozenset(v.exit_code for v in Verdict)


def load_budgets(path: Path) -> Budgets:
    """The parsed budgets file; ConfigError with the BudgetError's message when invalid."""
    try:
        return _load_budgets(path)
    except BudgetError as exc:
        raise ConfigError(f"invalid budget file {path}: {exc}") from exc


def exit_code_of(summary: Summary) -> int:
    """The summary's own exit code, or the one its verdict implies."""
    code = summary.get("exit_code")
    if isinstance(code, int) and not isinstance(code, bool) and code in _JUDGED_EXITS:
        return code
    return Verdict.parse(summary.get("verdict")).exit_code


def judge_run(run_dir: Path, budgets: Budgets) -> Summary:
    """Summarise `run_dir`, write summary.json, junit.xml and summary.md; returns the summary."""
    try:
        summary = summarize(run_dir, budgets)
        write_summary(run_dir, summary)
        write_junit(summary, run_dir / "junit.xml")
        write_markdown(summary, run_dir / "summary.md")
    except ReportError as exc:
        raise ConfigError(f"could not judge run {run_dir}: {exc}") from exc
    return summary


def render_run(
    run_dir: Path,
    out: Path | None = None,
    story_baseline: Path | None = None,
    bench_json: Path | None = None,
) -> Path:
    """Render report.html for `run_dir` (or to `out`); returns where it was written."""
    try:
        return render_report(run_dir, out=out, story_baseline=story_baseline, bench_json=bench_json)
    except ReportError as exc:
        raise ConfigError(f"could not render the report of {run_dir}: {exc}") from exc


def check_run_dir(run_dir: Path) -> Path:
    """`run_dir` resolved, or ConfigError when it is not a run folder."""
    if not run_dir.is_dir():
        raise ConfigError(f"run folder {run_dir} does not exist; give a folder under runs/")
    for name in (CONFIG, META):
        if not (run_dir / name).is_file():
            raise ConfigError(
                f"{run_dir} has no {name}; it is not a run folder written by `velro-perf run`"
            )
    return run_dir.resolve()


def gate_run(run_dir: Path, budgets_file: Path) -> tuple[Summary, int]:
    """Re-judge a finished run: rewrite summary.json and junit.xml; returns (summary, code)."""
    run_dir = check_run_dir(run_dir)
    budgets = load_budgets(budgets_file)
    summary = judge_run(run_dir, budgets)
    return summary, exit_code_of(summary)

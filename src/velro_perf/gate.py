"""Judging a run against the budgets, through the reports package, and the exit code it gives.

The figures and verdicts are computed by `reports.analysis` from the run folder's files alone;
this module only wires it: load the budgets, summarise, write summary.json and junit.xml, and
turn the verdict into an exit code. The reports package is imported lazily, so the rest of the
command line works (and says clearly what is missing) before it is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from velro_perf.errors import (
    EXIT_FAIL,
    EXIT_INVALID,
    EXIT_PASS,
    ConfigError,
    MissingComponentError,
)

__all__ = [
    "append_history",
    "check_run_dir",
    "exit_code_of",
    "gate_run",
    "judge_run",
    "load_budgets",
    "render_run",
]

_VERDICT_EXIT = {"pass": EXIT_PASS, "fail": EXIT_FAIL, "inconclusive": EXIT_FAIL}


def _missing(what: str, exc: ImportError) -> MissingComponentError:
    return MissingComponentError(
        f"{what} is not available ({exc}); the reports package (reports/) must be installed "
        "in this environment before runs can be judged or rendered"
    )


def load_budgets(path: Path) -> Any:
    """The parsed budgets file; ConfigError with the BudgetError's message when invalid."""
    try:
        from reports.budgets import load_budgets as _load
        from reports.errors import BudgetError
    except ImportError as exc:
        raise _missing("reports.budgets", exc) from exc
    try:
        return _load(path)
    except BudgetError as exc:
        raise ConfigError(f"invalid budget file {path}: {exc}") from exc


def exit_code_of(summary: dict[str, Any]) -> int:
    """The summary's own exit code, or the one its verdict implies."""
    code = summary.get("exit_code")
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code <= 3:
        return code
    return _VERDICT_EXIT.get(str(summary.get("verdict")), EXIT_INVALID)


def judge_run(run_dir: Path, budgets: Any) -> dict[str, Any]:
    """Summarise `run_dir`, write summary.json, junit.xml and summary.md; returns the summary."""
    try:
        from reports.analysis import summarize, write_summary
        from reports.errors import ReportError
        from reports.junit import write_junit
        from reports.markdown import write_markdown
    except ImportError as exc:
        raise _missing("reports.analysis / reports.junit", exc) from exc
    try:
        summary: dict[str, Any] = summarize(run_dir, budgets)
        write_summary(run_dir, summary)
        write_junit(summary, run_dir / "junit.xml")
        write_markdown(summary, run_dir / "summary.md")
    except ReportError as exc:
        raise ConfigError(f"could not judge run {run_dir}: {exc}") from exc
    return summary


def append_history(runs_root: Path, summary: dict[str, Any]) -> None:
    try:
        from reports.history import append_history as _append
    except ImportError as exc:
        raise _missing("reports.history", exc) from exc
    _append(runs_root, summary)


def render_run(
    run_dir: Path,
    out: Path | None = None,
    story_baseline: Path | None = None,
    bench_json: Path | None = None,
) -> Path:
    """Render report.html for `run_dir` (or to `out`); returns where it was written."""
    try:
        from reports.errors import ReportError
        from reports.render import render_report
    except ImportError as exc:
        raise _missing("reports.render", exc) from exc
    try:
        return Path(
            render_report(run_dir, out=out, story_baseline=story_baseline, bench_json=bench_json)
        )
    except ReportError as exc:
        raise ConfigError(f"could not render the report of {run_dir}: {exc}") from exc


def check_run_dir(run_dir: Path) -> Path:
    """`run_dir` resolved, or ConfigError when it is not a run folder."""
    if not run_dir.is_dir():
        raise ConfigError(f"run folder {run_dir} does not exist; give a folder under runs/")
    for name in ("config.json", "meta.json"):
        if not (run_dir / name).is_file():
            raise ConfigError(
                f"{run_dir} has no {name}; it is not a run folder written by `velro-perf run`"
            )
    return run_dir.resolve()


def gate_run(run_dir: Path, budgets_file: Path) -> tuple[dict[str, Any], int]:
    """Re-judge a finished run: rewrite summary.json and junit.xml; returns (summary, code)."""
    run_dir = check_run_dir(run_dir)
    budgets = load_budgets(budgets_file)
    summary = judge_run(run_dir, budgets)
    return summary, exit_code_of(summary)

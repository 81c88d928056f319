"""reports: data in, HTML out.

Reads only the files of a run directory (docs/run-format.md) and fixtures/budgets.toml; knows
nothing of the service or of Locust's internals. The public surface:

* budgets: ``load_budgets(path) -> Budgets``
* verdicts: ``summarize(run_dir, budgets) -> dict``, ``write_summary(run_dir, summary)``
* CI output: ``write_junit(summary, path)``; trends: ``append_history``, ``read_history``
* the report: ``render_report(run_dir, ...) -> Path``
* comparison: ``compare_runs(baseline_dir, current_dir) -> Comparison``,
  ``render_comparison(cmp, out) -> Path``
"""

from __future__ import annotations

from reports.analysis import summarize, write_summary
from reports.budgets import Budget, Budgets, load_budgets
from reports.compare import Comparison, EndpointChange, compare_runs, render_comparison
from reports.errors import BudgetError, ReportError, RunDirError
from reports.history import append_history, read_history
from reports.junit import write_junit
from reports.render import render_report

__all__ = [
    "Budget",
    "BudgetError",
    "Budgets",
    "Comparison",
    "EndpointChange",
    "ReportError",
    "RunDirError",
    "append_history",
    "compare_runs",
    "load_budgets",
    "read_history",
    "render_comparison",
    "render_report",
    "summarize",
    "write_junit",
    "write_summary",
]

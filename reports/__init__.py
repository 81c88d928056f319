"""reports: data in, HTML out.

Reads only the files of a run directory (docs/run-format.md) and fixtures/budgets.toml; knows
nothing of the service or of Locust's internals. The public surface:

* the run files' types and verdicts: ``Summary``, ``BudgetResult``, ``Verdict`` (runfiles)
* budgets: ``load_budgets(path) -> Budgets``
* verdicts: ``summarize(run_dir, budgets) -> Summary``, ``write_summary(run_dir, summary)``
* CI output: ``write_junit(summary, path)``; trends: ``append_history``, ``read_history``
* the report: ``render_report(run_dir, ...) -> Path``
* comparison: ``compare_runs(baseline_dir, current_dir) -> Comparison``,
  ``render_comparison(cmp, out) -> Path``

The names are imported on first use (PEP 562), so that a reader of one module, such as the
command line reading ``reports.runfiles`` for its exit codes, does not pay for pandas and
matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from velro_perf.reports.analysis import summarize, write_summary
    from velro_perf.reports.budgets import Budget, Budgets, load_budgets
    from velro_perf.reports.compare import (
        Comparison,
        EndpointChange,
        compare_runs,
        render_comparison,
    )
    from velro_perf.reports.errors import BudgetError, ReportError, RunDirError
    from velro_perf.reports.history import append_history, read_history
    from velro_perf.reports.junit import write_junit
    from velro_perf.reports.render import render_report
    from velro_perf.reports.runfiles import BudgetResult, BudgetVerdict, Summary, Verdict

_HOME = {
    "Budget": "budgets",
    "BudgetError": "errors",
    "BudgetResult": "runfiles",
    "BudgetVerdict": "runfiles",
    "Budgets": "budgets",
    "Comparison": "compare",
    "EndpointChange": "compare",
    "ReportError": "errors",
    "RunDirError": "errors",
    "Summary": "runfiles",
    "Verdict": "runfiles",
    "append_history": "history",
    "compare_runs": "compare",
    "load_budgets": "budgets",
    "read_history": "history",
    "render_comparison": "compare",
    "render_report": "render",
    "summarize": "analysis",
    "write_junit": "junit",
    "write_summary": "analysis",
}

__all__ = [
    "Budget",
    "BudgetError",
    "BudgetResult",
    "BudgetVerdict",
    "Budgets",
    "Comparison",
    "EndpointChange",
    "ReportError",
    "RunDirError",
    "Summary",
    "Verdict",
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


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # relative to this package, whatever name it is imported under: a module named by a
    # string of its own would load a second copy of it beside the imported one
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)

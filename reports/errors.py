"""The errors the reports package raises.

Every message names the bad value and says how to fix it::

    ReportError                 anything this package refuses to do
    ├── BudgetError             fixtures/budgets.toml is missing, malformed or inconsistent
    └── RunDirError             a run directory lacks a file it needs, or a file is unreadable
"""

from __future__ import annotations

__all__ = ["BudgetError", "ReportError", "RunDirError"]


class ReportError(Exception):
    """Base class: the reports package cannot do what was asked."""


class BudgetError(ReportError):
    """The budgets file cannot be used; the message names the budget, the key and the fix."""


class RunDirError(ReportError):
    """A run directory is missing a file, or a file in it cannot be read."""

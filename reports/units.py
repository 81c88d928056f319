"""How a figure is written for a person: the one millisecond formatter of the suite.

Three significant figures at most, and no false precision: 1,234 · 123 · 12.3 · 1.23 · 0.123.
Used by the report (reports/render.py's ``ms`` filter, the budgets' sentences) and by the
command line's tables (velro_perf/bench/tables.py, velro_perf/compare.py).
"""

from __future__ import annotations

import math

__all__ = ["MISSING", "fmt_ms"]

MISSING = "—"  # what a figure that was not measured is written as


def fmt_ms(value: float | None, unit: str = " ms", missing: str = MISSING) -> str:
    """Milliseconds as a person reads them; `missing` for None or a non-finite value."""
    if value is None or not math.isfinite(value):
        return missing
    if value >= 100:
        text = f"{value:,.0f}"
    elif value >= 10:
        text = f"{value:.1f}"
    elif value >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return text + unit

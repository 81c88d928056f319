"""The sentences a stakeholder reads: a measured value in its unit, a bound as the PRD
states it, and one line per judged budget."""

from __future__ import annotations

from velro_perf.reports.budgets import Budget
from velro_perf.reports.runfiles import BudgetResult
from velro_perf.reports.units import MISSING, fmt_ms

__all__ = ["bound_text", "fmt_value", "sentence"]


def fmt_value(kind: str, value: float | None) -> str:
    """A measured value as a stakeholder reads it: ms, %, users."""
    if value is None:
        return MISSING
    if kind in ("latency", "microbenchmark"):
        return fmt_ms(value)
    if kind in ("hit_rate", "error_rate"):
        pct = value * 100
        return f"{pct:.1f} %" if kind == "hit_rate" else f"{pct:.3f} %"
    return f"{value:,.0f}"


def bound_text(b: Budget) -> str:
    """The bound as the PRD states it: "< 50 ms", "≥ 95 %", "≤ 0.1 %", "≥ 10,000"."""
    if b.kind in ("latency", "microbenchmark"):
        return f"< {b.max:g} ms"
    if b.kind == "hit_rate":
        return f"≥ {(b.min or 0) * 100:g} %"
    if b.kind == "error_rate":
        return f"≤ {(b.max or 0) * 100:g} %"
    if b.min is not None:
        return f"≥ {b.min:,.0f}"
    return f"≤ {b.max:,.0f}"


def sentence(r: BudgetResult, b: Budget) -> str:
    what = b.requirement[:1].upper() + b.requirement[1:]
    if b.percentile is not None:
        what += f" p{b.percentile:g}"
    if b.kind == "users":
        what += " held within every latency budget"
    verdict = r["verdict"].replace("_", " ")
    if r["measured"] is None:
        reason = r["note"] or "nothing was measured"
        return f"{what}: {verdict} ({reason})."
    ci = ""
    if b.kind != "users":
        lo = fmt_value(b.kind, r["ci_low"]) if r["ci_low"] is not None else "unbounded"
        hi = fmt_value(b.kind, r["ci_high"]) if r["ci_high"] is not None else "unbounded"
        ci = f" (95 % CI {lo} to {hi})"
    return f"{what} was {fmt_value(b.kind, r['measured'])}{ci} against {bound_text(b)}: {verdict}."

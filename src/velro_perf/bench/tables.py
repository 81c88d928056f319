"""The fixed-width tables `velro-perf bench` prints: results, tier budgets, a comparison."""

from __future__ import annotations

from typing import Any

from velro_perf.bench.compare import (
    Change,
    TierBudgetResult,
    anchor_ratios,
    benchmarks_of,
    median_ms,
    percentile_ms,
    rounds_s,
)
from velro_perf.reports.units import fmt_ms

__all__ = ["budgets_table", "compare_table", "fmt_ratio", "results_table", "table"]


def _ms(value: float | None) -> str:
    return fmt_ms(value, missing="-")


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:.1f}x" if ratio >= 0.95 else f"{ratio:.2g}x"


def _pct(ratio: float | None) -> str:
    return f"{100.0 * (ratio - 1.0):+.1f} %" if ratio is not None else "-"


def table(rows: list[list[str]]) -> list[str]:
    """The rows as aligned lines, the first a header underlined with dashes."""
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
    for b in benchmarks_of(data):
        name = str(b.get("name"))
        extra = b.get("extra_info") or {}
        rows.append(
            [
                name,
                str(extra.get("tier") or "-"),
                _ms(median_ms(b)),
                _ms(percentile_ms(b, 99)),
                str(len(rounds_s(b))),
                str((b.get("stats") or {}).get("iterations", "-")),
                str(extra.get("anchor") or "-"),
                fmt_ratio(ratios.get(name)),
            ]
        )
    return table(rows)


def budgets_table(results: list[TierBudgetResult]) -> list[str]:
    rows = [["budget", "benchmark", "measured", "bound", "rounds", "verdict"]]
    for r in results:
        rows.append(
            [
                r.budget_id,
                r.benchmark,
                f"p{r.percentile:g} {_ms(r.measured_ms)}",
                f"< {r.max_ms:g} ms",
                str(r.rounds),
                r.verdict,
            ]
        )
    return table(rows)


def compare_table(changes: list[Change]) -> list[str]:
    rows = [
        ["benchmark", "base median", "median", "change", "p (Mann-Whitney)", "verdict", "anchor"]
    ]
    for c in changes:
        rows.append(
            [
                c.name,
                _ms(c.base_median_ms),
                _ms(c.median_ms),
                _pct(c.ratio),
                f"{c.p_value:.2g}" if c.p_value is not None else "-",
                c.verdict,
                _pct(c.anchor_ratio),
            ]
        )
    return table(rows)

"""`velro-perf compare`: two runs side by side, through `reports.compare`.

The judgement of what changed (percentile intervals, Mann-Whitney) and the HTML belong to
`reports.compare`; this prints its per-endpoint rows as a table for a CI log, its warnings,
and turns a significant regression into exit code 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from velro_perf.errors import EXIT_FAIL, EXIT_PASS, ConfigError
from velro_perf.gate import check_run_dir
from velro_perf.reports.compare import compare_runs, render_comparison
from velro_perf.reports.errors import ReportError
from velro_perf.reports.units import fmt_ms

__all__ = ["compare_command", "comparison_table"]


def _ms(value: Any) -> str:
    return fmt_ms(float(value), unit="", missing="-") if isinstance(value, int | float) else "-"


def comparison_table(rows: list[Any]) -> list[str]:
    """Fixed-width lines: p50/p95/p99 of each endpoint in both runs, the change, the verdict."""
    header = ("endpoint", "n base", "n now", "p95 base", "p95 now", "p95 change", "p99 base",
              "p99 now", "p value", "verdict")  # fmt: skip
    table: list[tuple[str, ...]] = [header]
    for row in rows:
        q = getattr(row, "quantiles", {}) or {}
        p95, p99 = q.get("p95"), q.get("p99")
        rel = getattr(p95, "relative", None)
        p_value = getattr(row, "p_value", None)
        table.append(
            (
                str(getattr(row, "endpoint", "?")),
                str(getattr(row, "n_baseline", "-")),
                str(getattr(row, "n_current", "-")),
                _ms(getattr(p95, "baseline", None)),
                _ms(getattr(p95, "current", None)),
                f"{100.0 * rel:+.0f} %" if isinstance(rel, int | float) else "-",
                _ms(getattr(p99, "baseline", None)),
                _ms(getattr(p99, "current", None)),
                f"{p_value:.3g}" if isinstance(p_value, int | float) else "-",
                str(getattr(row, "verdict", "-")),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = []
    for r in table:
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    return lines


def compare_command(baseline: Path, current: Path, out: Path | None, stream: TextIO) -> int:
    baseline, current = check_run_dir(baseline), check_run_dir(current)
    target = out or current / "comparison.html"
    try:
        cmp = compare_runs(baseline, current)
        written = render_comparison(cmp, target)
    except ReportError as exc:
        raise ConfigError(f"could not compare {baseline} with {current}: {exc}") from exc
    stream.write(f"baseline {baseline.name}  current {current.name}\n")
    for line in comparison_table(list(getattr(cmp, "rows", []) or [])):
        stream.write(line + "\n")
    for warning in getattr(cmp, "warnings", []) or []:
        stream.write(f"warning: {warning}\n")
    stream.write(f"comparison: {written or target}\n")
    if getattr(cmp, "regressed", False):
        regressed = [r.endpoint for r in cmp.rows if getattr(r, "verdict", "") == "regressed"]
        stream.write(f"significant regression: {', '.join(regressed) or 'see the comparison'}\n")
        return EXIT_FAIL
    stream.write("no significant regression\n")
    return EXIT_PASS

"""`velro-perf compare`: two runs side by side, through `reports.compare`.

The per-endpoint table is printed from the two summary.json files (what a CI log shows); the
judgement of what regressed, and the HTML, belong to `reports.compare`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from velro_perf.errors import EXIT_FAIL, EXIT_PASS, ConfigError, MissingComponentError
from velro_perf.gate import check_run_dir

__all__ = ["compare_command", "endpoint_table"]


def _summary(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "summary.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{run_dir} has no summary.json; judge it first with `velro-perf gate {run_dir}`"
        ) from exc
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not valid JSON ({exc}); re-judge with velro-perf gate"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object; re-judge with velro-perf gate")
    return data


def _fmt(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else "-"


def endpoint_table(baseline: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Lines of a fixed-width table: p95 and p99 of each endpoint in both runs."""
    base = {e.get("endpoint"): e for e in baseline.get("endpoints", [])}
    cur = {e.get("endpoint"): e for e in current.get("endpoints", [])}
    names = sorted(n for n in set(base) | set(cur) if isinstance(n, str))
    width = max([len("endpoint"), *(len(n) for n in names)])
    lines = [
        f"{'endpoint':<{width}}  {'p95 base':>9}  {'p95 now':>9}  {'change':>8}"
        f"  {'p99 base':>9}  {'p99 now':>9}"
    ]
    for name in names:
        b, c = base.get(name, {}), cur.get(name, {})
        b95, c95 = b.get("p95"), c.get("p95")
        change = "-"
        if isinstance(b95, int | float) and isinstance(c95, int | float) and b95 > 0:
            change = f"{100.0 * (c95 - b95) / b95:+.0f} %"
        lines.append(
            f"{name:<{width}}  {_fmt(b95):>9}  {_fmt(c95):>9}  {change:>8}"
            f"  {_fmt(b.get('p99')):>9}  {_fmt(c.get('p99')):>9}"
        )
    return lines


def compare_command(baseline: Path, current: Path, out: Path | None, stream: TextIO) -> int:
    baseline, current = check_run_dir(baseline), check_run_dir(current)
    for line in endpoint_table(_summary(baseline), _summary(current)):
        stream.write(line + "\n")
    try:
        from reports.compare import compare_runs, render_comparison
        from reports.errors import ReportError
    except ImportError as exc:
        raise MissingComponentError(
            f"reports.compare is not available ({exc}); install the reports package"
        ) from exc
    try:
        cmp = compare_runs(baseline, current)
        target = out or current / "comparison.html"
        written = render_comparison(cmp, target)
    except ReportError as exc:
        raise ConfigError(f"could not compare {baseline} with {current}: {exc}") from exc
    for warning in getattr(cmp, "warnings", []) or []:
        stream.write(f"warning: {warning}\n")
    stream.write(f"comparison: {written or target}\n")
    if getattr(cmp, "regressed", False):
        stream.write("significant regression: exit 1\n")
        return EXIT_FAIL
    stream.write("no significant regression\n")
    return EXIT_PASS

"""summary.md: the run's verdict as a short Markdown table, for a CI job summary or a
pull-request comment (as k6's `handleSummary` writes a text summary beside its JSON).

A pure function of summary.json: the verdict line, one row per budget a load run judges
(microbenchmark budgets are left to `velro-perf bench`), and why a run is invalid.
"""

from __future__ import annotations

from pathlib import Path

from velro_perf.reports.runfiles import Summary
from velro_perf.reports.sentences import fmt_value

__all__ = ["phase_table", "render_markdown", "write_markdown"]

_MARK = {
    "pass": "✅ pass",
    "fail": "❌ fail",
    "inconclusive": "⚠️ inconclusive",
    "invalid": "⛔ invalid",
    "not_applicable": "➖ not applicable",
    "no_data": "➖ no data",
}


def _cell(text: object) -> str:
    # a table cell holds no pipe and no newline
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: Summary) -> str:
    """The Markdown text of summary.md."""
    verdict = str(summary.get("verdict"))
    api = summary.get("api")
    target = summary.get("target") or "reference"
    about = f"Shape `{summary.get('shape')}` against `{target}`"
    if target == "reference":
        about += f" ({summary.get('service_profile')})"
    if api:
        sha = str(api.get("sha256"))[:12]
        about += f", API `{api.get('name')}` (`{api.get('file')}`, sha256 `{sha}`)"
    about += f"; {summary.get('requests') or 0:,} judged requests"
    if summary.get("samples_mode") == "histogram":
        about += " (measured as HdrHistograms, 3 significant digits)"
    if summary.get("rps"):
        about += f" at {summary['rps']:.0f}/s"
    about += f"; run `{summary.get('run_id')}`, config `{str(summary.get('config_hash'))[:12]}`."
    lines = [
        f"### velro-perf: {_MARK.get(verdict, verdict)} (exit {summary.get('exit_code')})",
        "",
        about,
        "",
    ]
    reasons = summary.get("invalid_reasons") or []
    if reasons:
        lines += ["**Invalid run:** " + "; ".join(_cell(r) for r in reasons), ""]
    lines += [
        "| budget | bound | measured | 95 % CI | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for b in summary.get("budgets", []):
        if b.get("kind") == "microbenchmark":
            continue
        kind = str(b.get("kind"))
        measured = fmt_value(kind, b.get("measured"))
        interval = ""
        if b.get("ci_low") is not None and b.get("ci_high") is not None and kind != "users":
            interval = f"{fmt_value(kind, b['ci_low'])} – {fmt_value(kind, b['ci_high'])}"
        state = _MARK.get(str(b.get("verdict")), str(b.get("verdict")))
        if b.get("verdict") in ("not_applicable", "no_data") and b.get("note"):
            state += f": {b['note']}"
        name = str(b.get("id")) + (
            " (the suite's own, not a PRD row)" if b.get("outside_prd") else ""
        )
        lines.append(
            f"| {_cell(name)} | {_cell(b.get('bound_text', ''))} | {_cell(measured)} | "
            f"{_cell(interval)} | {_cell(state)} |"
        )
    lines += phase_table(summary)
    for warning in summary.get("warnings") or []:
        lines += ["", f"> {_cell(warning)}"]
    return "\n".join(lines) + "\n"


def phase_table(summary: Summary) -> list[str]:
    """The phases (reports/phases.py) as Markdown lines: a title, then a row a phase."""
    phases = summary.get("phases") or []
    if not phases:
        return []
    ids = [i for i in phases[0]["latency"] if i.endswith((".p95", ".p99"))]
    head = ["phase", "s", "req/s", *ids, "max wait", "unexpected", "sign-ins refused"]
    lines = ["", "**Phases** (seconds from the end of warm-up)", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for p in phases:
        name = p["name"] + ("" if p["judged"] else " (warm-up)")
        if p.get("recovery_s") is not None:
            name += f", budgets held again {p['recovery_s']:.0f} s after the burst"
        cells = [name, f"{p['start_s']:.0f} to {p['end_s']:.0f}", f"{p['rps']:.1f}"]
        cells += [fmt_value("latency", p["latency"].get(i)) for i in ids]
        cells += [fmt_value("latency", p["max_ms"]), f"{p['unexpected']:,}"]
        cells.append(f"{p['sign_ins_refused']:,}")
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def write_markdown(summary: Summary, path: Path) -> Path:
    """Write summary.md; return its path."""
    path.write_text(render_markdown(summary), encoding="utf-8")
    return path

"""The report of a capacity search: the answer, the knee chart and the steps, in one HTML file.

The knee chart has one point per step: above, each judged latency percentile against the
level with its 95 % interval and its budget drawn as a dashed line of the same colour (a
cross where the step failed it); below, the throughput against the level, with the bounds
the operational laws put on it (c / D for the machine as run, and for the service alone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from velro_perf.reports.charts import _COLORS, Chart, _figure, _plain_log, _render

__all__ = ["knee_chart", "render_capacity_report"]


def knee_chart(summary: dict[str, Any]) -> Chart | None:
    steps = sorted(summary["steps"], key=lambda s: s["level"])
    if not steps:
        return None
    capacity = summary["capacity"]
    unit = capacity["unit"]
    fig, (top, bottom) = _figure(height=6.4, nrows=2)
    ids = []
    for step in steps:
        for row in step["budgets"]:
            if row["kind"] == "latency" and row["id"] not in ids and row["measured"] is not None:
                ids.append(row["id"])
    for index, budget_id in enumerate(ids):
        color = _COLORS[index % len(_COLORS)]
        xs, ys, lows, highs, failed = [], [], [], [], []
        bound = None
        for step in steps:
            row = next((r for r in step["budgets"] if r["id"] == budget_id), None)
            if row is None or row["measured"] is None:
                continue
            bound = row["bound"].get("max", bound)
            xs.append(step["level"])
            ys.append(row["measured"])
            lows.append(
                row["measured"] - (row["ci_low"] if row["ci_low"] is not None else row["measured"])
            )
            highs.append(
                (row["ci_high"] if row["ci_high"] is not None else row["measured"])
                - row["measured"]
            )
            failed.append(row["verdict"] == "fail")
        top.errorbar(
            xs, ys, yerr=[lows, highs], color=color, marker="o", ms=4, capsize=3, label=budget_id
        )
        fx = [x for x, f in zip(xs, failed, strict=True) if f]
        fy = [y for y, f in zip(ys, failed, strict=True) if f]
        if fx:
            top.scatter(fx, fy, marker="x", s=80, color=color, zorder=5)
        if bound is not None:
            top.axhline(bound, color=color, linestyle="--", linewidth=1)
    top.set_yscale("log")
    _plain_log(top.yaxis)
    top.set_ylabel("judged percentile (ms)")
    for axis in (top, bottom):
        axis.set_xscale("log")
        _plain_log(axis.xaxis)
        axis.grid(True, which="both", alpha=0.3)
        for key, style in (("level_passed", "-"), ("level_failed", ":")):
            if capacity.get(key) is not None:
                axis.axvline(capacity[key], color="#57606a", linestyle=style, linewidth=1)
    if ids:
        top.legend(fontsize=8, loc="upper left")
    xs = [s["level"] for s in steps]
    bottom.plot(
        xs, [s["throughput_rps"] for s in steps], marker="o", color=_COLORS[0], label="measured"
    )
    laws = capacity.get("laws") or {}
    for key, label, color in (
        ("max_rps_shared", "c / D, this machine", _COLORS[1]),
        ("max_rps_service_alone", "c / D, service alone", _COLORS[2]),
    ):
        if laws.get(key):
            bottom.axhline(laws[key], color=color, linestyle="--", linewidth=1, label=label)
    bottom.set_xlabel(f"level ({unit})")
    bottom.set_ylabel("throughput (requests/s)")
    bottom.legend(fontsize=8, loc="upper left")
    return Chart(
        title="The knee",
        caption=(
            "One point per step (its hold), 95 % intervals; dashed lines: the budgets (above) "
            "and the operational laws' throughput bounds (below); vertical lines: the level "
            "that passed (solid) and the one that did not (dotted). Source: summary.json."
        ),
        png_b64=_render(fig),
        alt=f"judged percentiles and throughput against the level in {unit}",
    )


def render_capacity_report(summary: dict[str, Any], lines: list[str], out: Path) -> Path:
    from velro_perf.reports.render import environment

    template = environment().get_template("capacity.html.j2")
    html = template.render(s=summary, c=summary["capacity"], lines=lines, chart=knee_chart(summary))
    out.write_text(html, encoding="utf-8")
    return out

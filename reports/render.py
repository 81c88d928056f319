"""The self-contained PRD-compliance report of one run: data in, one HTML file out.

Everything the page shows is inside the file: CSS inline, charts as base64 PNG, no font, script
or image from any other host (a Content-Security-Policy meta tag forbids it, so a reader's
browser would refuse even a mistake). It can be mailed, opened offline and printed.
"""

from __future__ import annotations

import math
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined

from velro_perf.reports import charts
from velro_perf.reports.analysis import summarize_data
from velro_perf.reports.benchjson import benchmark_rows, judge_microbenchmarks, read_bench_json
from velro_perf.reports.budgets import Budgets, load_budgets
from velro_perf.reports.errors import RunDirError
from velro_perf.reports.figures import run_charts
from velro_perf.reports.history import read_history
from velro_perf.reports.loading import RunData, load_run
from velro_perf.reports.runfiles import (
    BudgetResult,
    BudgetVerdict,
    MicrobenchResult,
    RunMeta,
    Summary,
)
from velro_perf.reports.runfolder import RunFolder, read_json
from velro_perf.reports.sentences import fmt_value
from velro_perf.reports.units import MISSING, fmt_ms
from velro_perf.suitedata import budgets_file, story_claims_file

__all__ = [
    "DEFAULT_BUDGETS",
    "DEFAULT_CLAIMS",
    "environment",
    "find_story_baseline",
    "render_report",
]

# the suite's own files (package data); suitedata is a leaf of the standard library alone
DEFAULT_BUDGETS = budgets_file()
DEFAULT_CLAIMS = story_claims_file()
TREND_RUNS = 30


def environment() -> Environment:
    """The Jinja environment: autoescaping on for every template (they end in .html.j2, which
    select_autoescape's extension test would miss), undefined names are errors."""
    env = Environment(
        loader=PackageLoader("velro_perf.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ms"] = lambda v: fmt_ms(None if v is None else float(v), unit="")
    env.filters["num"] = _fmt_num
    env.filters["value"] = lambda v, kind: fmt_value(str(kind), v)
    env.filters["differs"] = _differs
    env.filters["utc"] = _utc
    return env


def _utc(ts: float) -> str:
    """An epoch time as a time of day in UTC, to a tenth of a second."""
    return datetime.fromtimestamp(float(ts), UTC).strftime("%H:%M:%S.%f")[:-5]


def render_report(
    run_dir: Path,
    *,
    out: Path | None = None,
    story_baseline: Path | None = None,
    bench_json: Path | None = None,
    budgets: Budgets | None = None,
    claims_file: Path | None = None,
) -> Path:
    """Render run_dir/report.html (or `out`); return the path written."""
    run_dir = Path(run_dir)
    data = load_run(run_dir)
    budgets = budgets or _budgets_for(data)
    summary = data.folder.summary() or summarize_data(data, budgets)
    runs_root = run_dir.parent

    if story_baseline is None and data.config.get("service_profile") == "fixed":
        story_baseline = find_story_baseline(runs_root, data)
    story = _story(summary, story_baseline, budgets, claims_file or DEFAULT_CLAIMS)

    bench_path = bench_json if bench_json is not None else runs_root / "bench" / "latest.json"
    bench = read_bench_json(bench_path)
    bench_section = None
    bench_by_id: dict[str, list[MicrobenchResult]] = {}
    if bench is not None:
        verdicts = judge_microbenchmarks(budgets, bench)
        bench_section = {
            "path": str(bench_path),
            "rows": benchmark_rows(bench),
            "verdicts": verdicts,
            "machine": bench.get("machine_info", {}),
            "datetime": bench.get("datetime"),
        }
        for v in verdicts:
            bench_by_id.setdefault(v["id"], []).append(v)

    context = {
        "s": summary,
        "bench_by_id": bench_by_id,
        "requirements": _requirements(summary),
        "charts": run_charts(data, summary),
        "story": story,
        "trend": _trend(runs_root, summary, budgets),
        "bench": bench_section,
        "calibration": _calibration(runs_root, data.meta),
        "generated_from": str(run_dir),
    }
    html = environment().get_template("report.html.j2").render(**context)
    target = Path(out) if out is not None else run_dir / "report.html"
    target.write_text(html, encoding="utf-8")
    return target


def _calibration(runs_root: Path, meta: RunMeta) -> dict[str, Any] | None:
    """The latest `velro-perf calibrate` of the machine this run ran on, if there is one."""
    try:
        found = read_json(runs_root / "calibration.json")
    except RunDirError:
        return None
    if not found:
        return None
    host = meta["machine"]["hostname"] if "machine" in meta else None
    if host is not None and (found.get("machine") or {}).get("hostname") != host:
        return None
    return found


def _budgets_for(data: RunData) -> Budgets:
    """The budgets file the run names (relative to the project or the working directory)."""
    named = data.config.get("budgets_file")
    if isinstance(named, str):
        for candidate in (Path(named), data.run_dir.parent.parent / named):
            if candidate.is_file():
                return load_budgets(candidate)
    return load_budgets(DEFAULT_BUDGETS)


def _requirements(summary: Summary) -> list[dict[str, str]]:
    """One line per PRD requirement: its worst budget verdict and its budgets' sentences."""
    groups: dict[str, list[BudgetResult]] = {}
    for b in summary["budgets"]:
        groups.setdefault(b["requirement"], []).append(b)
    out = []
    for name, items in groups.items():
        worst = min((BudgetVerdict(b["verdict"]) for b in items), key=lambda v: v.severity)
        sentence = " ".join(b.get("sentence", "") for b in items)
        if any(b.get("outside_prd") for b in items):
            sentence += " (A budget of the suite's own, outside the PRD's rows.)"
        out.append(
            {
                "requirement": name,
                "verdict": worst,
                "sentence": sentence,
            }
        )
    return out


# ---------------------------------------------------------------- the story


def find_story_baseline(runs_root: Path, data: RunData) -> Path | None:
    """The newest complete `degraded` run of the same shape under runs_root, if any."""
    best: tuple[str, Path] | None = None
    if not runs_root.is_dir():
        return None
    for d in runs_root.iterdir():
        if not d.is_dir() or d == data.run_dir:
            continue
        folder = RunFolder(d)
        config, meta = folder.config(), folder.meta()
        if (
            config.get("service_profile") == "degraded"
            and config.get("shape") == data.config.get("shape")
            and meta.get("complete") is True
        ):
            key = str(meta.get("started_at") or d.name)
            if best is None or key > best[0]:
                best = (key, d)
    return best[1] if best else None


def _story(
    summary: Summary, baseline: Path | None, budgets: Budgets, claims_file: Path
) -> dict[str, Any] | None:
    claims: list[dict[str, Any]] = []
    source = ""
    if claims_file.is_file():
        doc = tomllib.loads(claims_file.read_text(encoding="utf-8"))
        claims = [c for c in doc.get("claim", []) if isinstance(c, dict)]
        source = str(doc.get("source", ""))
    if baseline is None:
        return None
    base = RunFolder(baseline).summary() or summarize_data(load_run(baseline), budgets)
    before = {b["id"]: b for b in base["budgets"]}
    after = {b["id"]: b for b in summary["budgets"]}
    rows = []
    for claim in claims:
        ids = [i for i in claim.get("budgets", []) if i in after or i in before]
        rows.append(
            {
                "metric": claim.get("metric"),
                "claimed_before": claim.get("before"),
                "claimed_after": claim.get("after"),
                "claimed_improvement": claim.get("improvement"),
                "measured": [
                    {
                        "id": i,
                        "kind": (after.get(i) or before[i])["kind"],
                        "before": before.get(i, {}),
                        "after": after.get(i, {}),
                    }
                    for i in ids
                ],
            }
        )
    latency_ids = [b.id for b in budgets.of_kind("latency")]
    chart = charts.bar_compare(
        latency_ids,
        [before[i]["measured"] if i in before else None for i in latency_ids],
        [after[i]["measured"] if i in after else None for i in latency_ids],
        ("degraded (measured)", "fixed (measured)"),
        "milliseconds (log scale)",
        "Degraded against fixed, measured by this suite",
        f"from samples.csv of {base['run_id']} ({base['requests']:,} requests) and of "
        f"{summary['run_id']} ({summary['requests']:,} requests), after warm-up",
    )
    return {
        "baseline_id": base["run_id"],
        "baseline_verdict": base["verdict"],
        "baseline_requests": base["requests"],
        "source": source,
        "rows": rows,
        "chart": chart,
    }


# ---------------------------------------------------------------- trend


def _trend(runs_root: Path, summary: Summary, budgets: Budgets) -> dict[str, Any] | None:
    hist = read_history(runs_root)
    h = summary["config_hash"]
    if hist.empty or h is None or "config_hash" not in hist:
        return None
    same = hist[hist["config_hash"].astype(str) == str(h)]
    if "started_at" in same:
        same = same.sort_values("started_at", kind="stable")
    same = same.tail(TREND_RUNS)
    ids = [b.id for b in budgets.of_kind("latency") if b.id in same.columns]
    values = {i: same[i].to_numpy(dtype=np.float64) for i in ids}
    chart = charts.trend(
        [str(r) for r in same["run_id"]],
        values,
        "measured value (ms, log scale)",
        f"from runs/history.csv: the last {len(same)} runs with config_hash {str(h)[:12]}",
    )
    return {"runs": len(same), "chart": chart}


# ---------------------------------------------------------------- filters


def _fmt_num(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return f"{float(value):,.{digits}f}"


def _differs(locust: Any, exact: Any) -> bool:
    """Locust's rounded figure differs visibly (by more than 1 ms and 1 %) from the exact one."""
    if locust is None or exact is None:
        return False
    diff = abs(float(locust) - float(exact))
    return diff > 1.0 and diff > 0.01 * abs(float(exact))

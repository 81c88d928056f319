"""The self-contained PRD-compliance report of one run: data in, one HTML file out.

Everything the page shows is inside the file: CSS inline, charts as base64 PNG, no font, script
or image from any other host (a Content-Security-Policy meta tag forbids it, so a reader's
browser would refuse even a mistake). It can be mailed, opened offline and printed.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined

from reports import charts
from reports.analysis import fmt_value, summarize_data
from reports.benchjson import benchmark_rows, judge_microbenchmarks, read_bench_json
from reports.budgets import Budgets, load_budgets
from reports.figures import run_charts
from reports.history import read_history
from reports.loading import RunData, load_run, read_json

__all__ = [
    "DEFAULT_BUDGETS",
    "DEFAULT_CLAIMS",
    "environment",
    "find_story_baseline",
    "render_report",
]

_PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_BUDGETS = _PROJECT / "fixtures" / "budgets.toml"
DEFAULT_CLAIMS = _PROJECT / "fixtures" / "story_claims.toml"
TREND_RUNS = 30
_VERDICT_ORDER = ["fail", "inconclusive", "pass", "no_data", "not_applicable"]


def environment() -> Environment:
    """The Jinja environment: autoescaping on for every template (they end in .html.j2, which
    select_autoescape's extension test would miss), undefined names are errors."""
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ms"] = _fmt_ms
    env.filters["num"] = _fmt_num
    env.filters["value"] = lambda v, kind: fmt_value(str(kind), v)
    env.filters["differs"] = _differs
    return env


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
    summary = _with_defaults(read_json(run_dir / "summary.json") or summarize_data(data, budgets))
    runs_root = run_dir.parent

    if story_baseline is None and data.config.get("service_profile") == "fixed":
        story_baseline = find_story_baseline(runs_root, data)
    story = _story(summary, story_baseline, budgets, claims_file or DEFAULT_CLAIMS)

    bench_path = bench_json if bench_json is not None else runs_root / "bench" / "latest.json"
    bench = read_bench_json(bench_path)
    bench_section = None
    if bench is not None:
        bench_section = {
            "path": str(bench_path),
            "rows": benchmark_rows(bench),
            "verdicts": judge_microbenchmarks(budgets, bench),
            "machine": bench.get("machine_info", {}),
            "datetime": bench.get("datetime"),
        }

    bench_by_id: dict[str, list[dict[str, Any]]] = {}
    for v in bench_section["verdicts"] if bench_section else []:
        bench_by_id.setdefault(str(v["id"]), []).append(v)

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


def _calibration(runs_root: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
    """The latest `velro-perf calibrate` of the machine this run ran on, if there is one."""
    try:
        found = json.loads((runs_root / "calibration.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(found, dict):
        return None
    host = (meta.get("machine") or {}).get("hostname")
    if host is not None and (found.get("machine") or {}).get("hostname") != host:
        return None
    return found


def _with_defaults(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary.json written by an older gate may lack newer keys: give them neutral values."""
    defaults: dict[str, Any] = {
        "run_id": "",
        "complete": False,
        "interrupted": None,
        "verdict": "inconclusive",
        "exit_code": 1,
        "invalid_reasons": [],
        "warnings": [],
        "prd": "",
        "shape": None,
        "service_profile": None,
        "target": None,
        "config_hash": None,
        "started_at": None,
        "duration_s": None,
        "requests": 0,
        "rps": None,
        "budgets": [],
        "endpoints": [],
        "generator": {},
        "config": {},
        "meta": {},
    }
    for key, value in defaults.items():
        summary.setdefault(key, value)
    return summary


def _budgets_for(data: RunData) -> Budgets:
    """The budgets file the run names (relative to the project or the working directory)."""
    named = data.config.get("budgets_file")
    if isinstance(named, str):
        for candidate in (Path(named), data.run_dir.parent.parent / named):
            if candidate.is_file():
                return load_budgets(candidate)
    return load_budgets(DEFAULT_BUDGETS)


def _requirements(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One line per PRD requirement: its worst budget verdict and its budgets' sentences."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for b in summary.get("budgets", []):
        groups.setdefault(str(b.get("requirement")), []).append(b)
    out = []
    for name, items in groups.items():
        verdicts = [str(b.get("verdict")) for b in items]
        worst = min(verdicts, key=lambda v: _VERDICT_ORDER.index(v) if v in _VERDICT_ORDER else 0)
        out.append(
            {
                "requirement": name,
                "verdict": worst,
                "sentence": " ".join(str(b.get("sentence", "")) for b in items),
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
        config = read_json(d / "config.json")
        meta = read_json(d / "meta.json")
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
    summary: dict[str, Any], baseline: Path | None, budgets: Budgets, claims_file: Path
) -> dict[str, Any] | None:
    claims: list[dict[str, Any]] = []
    source = ""
    if claims_file.is_file():
        doc = tomllib.loads(claims_file.read_text(encoding="utf-8"))
        claims = [c for c in doc.get("claim", []) if isinstance(c, dict)]
        source = str(doc.get("source", ""))
    if baseline is None:
        return None
    base_data = load_run(baseline)
    base = read_json(baseline / "summary.json") or summarize_data(base_data, budgets)
    before = {b["id"]: b for b in base.get("budgets", [])}
    after = {b["id"]: b for b in summary.get("budgets", [])}
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
                        "kind": (after.get(i) or before.get(i) or {}).get("kind", "latency"),
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
        [before.get(i, {}).get("measured") for i in latency_ids],
        [after.get(i, {}).get("measured") for i in latency_ids],
        ("degraded (measured)", "fixed (measured)"),
        "milliseconds (log scale)",
        "Degraded against fixed, measured by this suite",
        f"from samples.csv of {base.get('run_id')} ({base.get('requests', 0):,} requests) and of "
        f"{summary.get('run_id')} ({summary.get('requests', 0):,} requests), after warm-up",
    )
    return {
        "baseline_id": base.get("run_id"),
        "baseline_verdict": base.get("verdict"),
        "baseline_requests": base.get("requests"),
        "source": source,
        "rows": rows,
        "chart": chart,
    }


# ---------------------------------------------------------------- trend


def _trend(runs_root: Path, summary: dict[str, Any], budgets: Budgets) -> dict[str, Any] | None:
    hist = read_history(runs_root)
    h = summary.get("config_hash")
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


def _fmt_ms(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    v = float(value)
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}" if v >= 1 else f"{v:.3g}"


def _fmt_num(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{float(value):,.{digits}f}"


def _differs(locust: Any, exact: Any) -> bool:
    """Locust's rounded figure differs visibly (by more than 1 ms and 1 %) from the exact one."""
    if locust is None or exact is None:
        return False
    diff = abs(float(locust) - float(exact))
    return diff > 1.0 and diff > 0.01 * abs(float(exact))

"""The answer of a capacity search, with its uncertainty: summary.json, summary.md, report.html.

The capacity is an interval: the largest level whose every limiting budget passed and the
smallest that did not (a budget failed, stayed inconclusive, or the generator was invalid),
with the budget that gave way there and its figures. Beside it: the throughput at capacity,
why the search stopped, each step's verdicts and CPU split, the operational laws' prediction
(laws.py), the budgets reported beside the capacity (the cache hit rate) and the PRD's
`users.concurrent` judged from the interval.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from velro_perf.capacity.laws import LawInputs, predict
from velro_perf.capacity.options import CapacityOptions
from velro_perf.capacity.search import Outcome, Search
from velro_perf.capacity.steps import Step
from velro_perf.reports.budgets import Budgets
from velro_perf.reports.knee import render_capacity_report
from velro_perf.reports.runfolder import RunFolder
from velro_perf.runexec import RunState
from velro_perf.runmeta import utc_iso

__all__ = ["build_capacity", "render_markdown", "write_outputs"]


def _step_at(steps: list[Step], level: float | None) -> Step | None:
    """The last step held at `level` (a level may be held twice)."""
    found = [s for s in steps if level is not None and s.level == level]
    return found[-1] if found else None


def _laws(steps: list[Step], passed: Step | None, open_model: bool) -> dict[str, Any] | None:
    judged = [s for s in steps if s.cpu is not None and s.requests > 0]
    if not judged:
        return None
    light = min(judged, key=lambda s: s.level)
    loaded = passed or light
    cpu = loaded.cpu_per_request_ms()
    assert cpu is not None
    assert loaded.cpu is not None
    if cpu["service"] is None:
        # a --target without --target-pid: its CPU is somewhere in "other", and a demand
        # without it would bound nothing
        return {
            "cores": loaded.cpu.cores,
            "demand_step": loaded.index,
            "cpu_per_request_ms": cpu,
            "note": "the target's processes are not known (give --target-pid): no prediction",
        }
    # the run's own processes: service, generator, data stores and this runner; "other" is
    # whatever else the machine did (another user's work), shown but not charged to the load
    machine = sum(cpu[k] or 0.0 for k in ("service", "generator", "data_stores", "runner"))
    inputs = LawInputs(
        cores=loaded.cpu.cores,
        users=None if open_model else (light.users or light.level),
        throughput_rps=light.throughput_rps,
        response_s=(light.mean_latency_ms or 0.0) / 1000.0,
        service_demand_s=None if cpu["service"] is None else cpu["service"] / 1000.0,
        machine_demand_s=machine / 1000.0,
    )
    prediction = predict(inputs)
    return {
        "cores": inputs.cores,
        "light_step": light.index,
        "demand_step": loaded.index,
        "light_response_ms": light.mean_latency_ms,
        "cpu_per_request_ms": cpu,
        **(prediction.to_json() if prediction else {}),
    }


def _users_concurrent(budgets: Budgets, passed: float | None, failed: float | None) -> Any:
    """The PRD row `users.concurrent` judged from the interval (closed model only)."""
    rows = budgets.of_kind("users")
    if not rows:
        return None
    budget = rows[0]
    bound = budget.min or 0.0
    if passed is not None and passed >= bound:
        verdict = "pass"
    elif failed is not None and failed <= bound:
        verdict = "fail"
    else:
        verdict = "inconclusive"
    return {"id": budget.id, "min": bound, "verdict": verdict, "capacity": [passed, failed]}


def build_capacity(
    search: Search, steps: list[Step], budgets: Budgets, opts: CapacityOptions, began: float
) -> dict[str, Any]:
    open_model = opts.open_model
    passed_step = _step_at(steps, search.passed)
    failed_step = _step_at(steps, search.failed)
    limited_by = None
    figures: list[dict[str, Any]] = []
    if failed_step is not None:
        if failed_step.outcome is Outcome.INVALID:
            limited_by = "generator"
        elif failed_step.limited_by:
            limited_by = failed_step.limited_by[0]
        figures = [b for b in failed_step.budgets if b["id"] in failed_step.limited_by]
    hit = (
        next((b for b in passed_step.budgets if b["kind"] == "hit_rate"), None)
        if passed_step
        else None
    )
    capacity = {
        "model": "open" if open_model else "closed",
        "unit": "requests/s" if open_model else "users",
        "level_passed": search.passed,
        "level_failed": search.failed,
        "failed_verdict": failed_step.outcome.value if failed_step else None,
        "ratio": (search.failed / search.passed) if search.passed and search.failed else None,
        "throughput_rps": passed_step.throughput_rps if passed_step else None,
        "limited_by": limited_by,
        "limited_by_figures": figures,
        "limited_by_invalid": failed_step.invalid_reasons if failed_step else [],
        "stopped_because": search.stopped_because or "unknown",
        "require": opts.require,
        "reached_require": None
        if opts.require is None
        else (search.passed is not None and search.passed >= opts.require),
        "laws": _laws(steps, passed_step, open_model),
        "beside": {"cache.hit_rate": hit},
        "users_concurrent": None
        if open_model
        else _users_concurrent(budgets, search.passed, search.failed),
        "steps": len(steps),
        "elapsed_s": round(time.time() - began, 1),
    }
    return capacity


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer() and digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _figure(row: dict[str, Any]) -> str:
    """`authentication.p95 186.7 ms [179.8, 196.0], bound < 50 ms: fail`."""
    latency = row["kind"] == "latency"
    digits, unit = (1, " ms") if latency else (4, "")
    bound = row["bound"]
    side, value = ("<", bound["max"]) if "max" in bound else (">=", bound.get("min"))
    return (
        f"{row['id']} {_num(row['measured'], digits)}{unit} [{_num(row['ci_low'], digits)}, "
        f"{_num(row['ci_high'], digits)}], bound {side} {value:g}{unit}: {row['verdict']}"
    )


def answer_lines(capacity: dict[str, Any]) -> list[str]:
    unit = capacity["unit"]
    passed, failed = capacity["level_passed"], capacity["level_failed"]
    lines = []
    if passed is None:
        lines.append(f"capacity: no level passed (lowest tried {_num(failed, 0)} {unit})")
    else:
        upper = f", {_num(failed, 0)} did not" if failed is not None else ", no level failed"
        lines.append(
            f"capacity: {_num(passed, 0)} {unit} held every budget{upper}; "
            f"{_num(capacity['throughput_rps'])} requests/s at capacity"
        )
    if capacity["limited_by"]:
        figs = "; ".join(_figure(f) for f in capacity["limited_by_figures"])
        lines.append(
            f"limited by: {capacity['limited_by']} at {_num(failed, 0)} {unit}"
            + (f" ({figs})" if figs else "")
        )
        for reason in capacity["limited_by_invalid"]:
            lines.append(f"  invalid: {reason}")
    lines.append(f"stopped because: {capacity['stopped_because']}")
    laws = capacity.get("laws")
    if laws and laws.get("note"):
        lines.append(f"laws: {laws['note']}")
    if laws and laws.get("max_rps_shared"):
        cpu = laws["cpu_per_request_ms"]
        split = ", ".join(f"{k} {_num(v, 2)}" for k, v in cpu.items() if v is not None)
        lines.append(f"CPU per request (ms of a core, step {laws['demand_step']}): {split}")
        text = (
            f"laws (c = {laws['cores']} cores): throughput <= {_num(laws['max_rps_shared'])} "
            f"requests/s on this machine"
        )
        if laws.get("max_rps_service_alone"):
            text += f", {_num(laws['max_rps_service_alone'])} for the service alone"
        lines.append(text)
        if laws.get("knee_shared") is not None:
            knee = (
                f"predicted knee N* = c (R0 + Z) / D = {_num(laws['knee_shared'], 0)} users "
                f"(R0 {_num(laws['light_response_ms'])} ms, Z {_num(laws['think_s'], 2)} s)"
            )
            if laws.get("knee_service_alone") is not None:
                knee += f"; service alone {_num(laws['knee_service_alone'], 0)} users"
            knee += f"; observed between {_num(passed, 0)} and {_num(failed, 0)}"
            lines.append(knee)
    beside = (capacity.get("beside") or {}).get("cache.hit_rate")
    if beside:
        lines.append(
            f"beside the capacity: cache.hit_rate {_num(beside['measured'], 3)} "
            f"[{_num(beside['ci_low'], 3)}, {_num(beside['ci_high'], 3)}] at "
            f"{_num(passed, 0)} {unit}: {beside['verdict']} (not limiting: docs/capacity.md)"
        )
    users = capacity.get("users_concurrent")
    if users:
        lines.append(f"{users['id']} (at least {_num(users['min'], 0)} users): {users['verdict']}")
    if capacity.get("require") is not None:
        lines.append(
            f"--require {_num(capacity['require'], 0)}: "
            f"{'reached' if capacity['reached_require'] else 'not reached'}"
        )
    return lines


def render_markdown(summary: dict[str, Any]) -> str:
    capacity = summary["capacity"]
    out = [f"# Capacity: {summary['run_id']}", ""]
    out += [f"- {line}" for line in answer_lines(capacity)]
    out += [
        "",
        f"Target {summary['target']}, shape {summary['shape']}, commit "
        f"{(summary.get('git') or {}).get('commit') or '?'}.",
        "",
        "| step | level | verdict | req/s | mean ms | limiting budgets | hit rate "
        "| CPU ms/req service / generator / stores / other |",
        "|---:|---:|---|---:|---:|---|---:|---|",
    ]
    for step in summary["steps"]:
        limiting = ", ".join(
            f"{b['id']} {_num(b['measured'], 1 if b['kind'] == 'latency' else 4)} {b['verdict']}"
            for b in step["budgets"]
            if b["limiting"]
        )
        cpu = (step.get("cpu") or {}).get("per_request_ms") or {}
        split = " / ".join(
            _num(cpu.get(k), 2) for k in ("service", "generator", "data_stores", "other")
        )
        out.append(
            f"| {step['index']} | {_num(step['level'], 0)} | {step['verdict']} | "
            f"{_num(step['throughput_rps'])} | {_num(step['mean_latency_ms'])} | {limiting} | "
            f"{_num(step['hit_rate'], 3)} | {split} |"
        )
    return "\n".join(out) + "\n"


def write_outputs(
    run_dir: Path,
    state: RunState,
    search: Search,
    steps: list[Step],
    budgets: Budgets,
    opts: CapacityOptions,
    began: float,
) -> dict[str, Any]:
    """summary.json, summary.md and report.html of the search; returns the summary with the
    answer's lines (`lines`, not written)."""
    capacity = build_capacity(search, steps, budgets, opts, began)
    summary: dict[str, Any] = {
        "run_id": state.run_id,
        "kind": "capacity",
        "at": utc_iso(time.time()),
        "target": state.config.get("target"),
        "target_url": state.config.get("target_url"),
        "shape": state.config.get("shape"),
        "api": state.config.get("api_file"),
        "workload_file": state.config.get("workload_file"),
        "git": state.meta.get("git"),
        "machine": state.meta.get("machine"),
        "capacity": capacity,
        "steps": [step.to_json() for step in steps],
    }
    RunFolder(run_dir).write_summary(summary)
    (run_dir / "summary.md").write_text(render_markdown(summary), encoding="utf-8")
    lines = answer_lines(capacity)
    render_capacity_report(summary, lines, run_dir / "report.html")
    return {**summary, "lines": lines}

"""`velro-perf run`: one load run, from an empty folder to a judged, rendered run directory.

The order is the one docs/run-format.md describes: config.json and meta.json first, then the
load (Locust, with the metrics scraper and the generator watcher beside it), then, whether the
run ended normally or was interrupted, the end of meta.json, summary.json, junit.xml, a
history.csv row and report.html. Every process started here is stopped before it returns.

The run is planned in ``runplan.py`` (options, shape defaults, the first config.json and
meta.json) and executed in ``runexec.py`` (the load and its teardown); here are the run folder
and what is written once the load is over: the verdict, history.csv and the report.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from velro_perf import gate
from velro_perf.errors import EXIT_INVALID, ConfigError, VelroPerfError
from velro_perf.reports.budgets import Budgets
from velro_perf.reports.runfiles import Summary
from velro_perf.runexec import RunState, load_and_clean_up
from velro_perf.runmeta import make_run_id
from velro_perf.runplan import RunOptions, initial_config, initial_meta, plan_run, say
from velro_perf.target import check_reachable

__all__ = ["RunOptions", "execute_run", "print_verdict"]


def execute_run(opts: RunOptions) -> int:
    """Run the load, judge it, and return the exit code (0 pass, 1 fail, 3 invalid)."""
    plan = plan_run(opts)
    opts, shape, target = plan.opts, plan.shape, plan.target
    if target is not None:
        check_reachable(target)
    run_dir, run_id = _make_run_dir(opts.out, make_run_id(opts.shape, plan.profile))
    state = RunState(
        run_dir=run_dir,
        run_id=run_id,
        config=initial_config(opts, shape, run_id, target, plan.profile, plan.api),
        meta=initial_meta(opts, shape, run_id),
        shape=shape,
    )
    say(f"run {run_id}: {run_dir}")
    error = load_and_clean_up(state, opts, target)
    if error is not None and state.meta["measured_from"] is None:
        # nothing was measured: keep the folder only when it holds a log worth reading
        if not (run_dir / "service.log").exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise error
    return _judge(state, opts, plan.budgets)


def _make_run_dir(out: Path, run_id: str) -> tuple[Path, str]:
    """A new folder `out/run_id` (`-2`, `-3`... when two runs start in the same second)."""
    candidate, n = run_id, 1
    try:
        out.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                (out / candidate).mkdir()
                return (out / candidate).resolve(), candidate
            except FileExistsError:
                n += 1
                candidate = f"{run_id}-{n}"
    except OSError as exc:
        raise ConfigError(
            f"cannot create the run folder {out / candidate} ({exc.strerror}); "
            "give a writable folder with --out"
        ) from exc


def _judge(state: RunState, opts: RunOptions, budgets: Budgets) -> int:
    run_dir = state.run_dir
    if state.locust_exit not in {None, 0, 1}:
        # 1 is Locust's "some requests failed"; anything else is an error in the test itself
        say(f"warning: Locust exited with code {state.locust_exit}; see {run_dir / 'locust.log'}")
    summary = gate.judge_run(run_dir, budgets)
    code = gate.exit_code_of(summary)
    if state.meta["complete"]:
        try:
            gate.append_history(opts.out, summary)
        except VelroPerfError as exc:
            say(f"warning: history not updated: {exc}")
    try:
        report = gate.render_run(run_dir)
        say(f"report: {report}")
    except VelroPerfError as exc:
        say(f"warning: report not rendered: {exc}")
    print_verdict(summary)
    if state.interrupted is not None:
        say(
            f"run incomplete ({state.interrupted}): exit {EXIT_INVALID}; what was measured is "
            f"in {run_dir}"
        )
        return max(code, EXIT_INVALID)
    return code


def print_verdict(summary: Summary, stream: Any = None) -> None:
    out = stream or sys.stdout
    for budget in summary["budgets"]:
        sentence = budget.get("sentence") or f"{budget['id']}: {budget['verdict']}"
        out.write(f"  {sentence}\n")
    for reason in summary["invalid_reasons"]:
        out.write(f"  invalid: {reason}\n")
    out.write(f"verdict: {summary['verdict']} (exit {gate.exit_code_of(summary)})\n")
    out.flush()

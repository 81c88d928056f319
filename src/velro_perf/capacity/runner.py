"""`velro-perf capacity`: the largest level a backend holds within its budgets, searched.

One target service and one Locust run for the whole search: the run is `velro-perf run`'s
(the same run folder, service, scraper and generator watcher, runexec.py), except that its
levels come from a plan file this module rewrites (scenarios/capacityplan.py) instead of the
shape's stages. Restarting Locust for each step would ramp every step from zero (at 20 sign-ins
a second, 400 s to reach 8,000 users); kept up, a step only ramps from the last level, and a
bisection step below it ramps down at once.

Each step: ramp to the level, warm up, hold; the hold is judged as a run of its own by the
gate's code (reports.window), lengthened while a budget straddles its bound, and its CPU
split read from /proc over exactly the hold. The search (search.py) picks the next level.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from velro_perf.capacity.cpu import CpuGroups, CpuSplit, take_snapshot
from velro_perf.capacity.options import CapacityOptions, check
from velro_perf.capacity.report import write_outputs
from velro_perf.capacity.search import Outcome, Search
from velro_perf.capacity.steps import Step, cache_tiers, hit_rate_of, judge_step
from velro_perf.errors import (
    EXIT_FAIL,
    EXIT_INVALID,
    EXIT_PASS,
    ConfigError,
    RunInterrupted,
    TargetUnreachableError,
    UsageError,
)
from velro_perf.progress import StatsHistoryTail
from velro_perf.reports.budgets import Budgets
from velro_perf.reports.runfiles import OpenModelFile
from velro_perf.reports.samples import SampleStore
from velro_perf.reports.window import judge_window
from velro_perf.run import _make_run_dir
from velro_perf.runexec import RunState, load_and_clean_up
from velro_perf.runmeta import make_run_id
from velro_perf.runplan import RunOptions, initial_config, initial_meta, plan_run, say
from velro_perf.scenarios.capacityplan import Level, PlanFile
from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.shapes import Shape, load_shapes
from velro_perf.target import check_reachable

__all__ = ["execute_capacity"]

# after a hold, until its last samples are on disk: a single Locust process flushes every 2 s;
# with workers, they report every 3 s and the master flushes every 2 s
SETTLE_S = {True: 2.5, False: 5.0}
DRAIN_MAX_S = 60.0  # open model: the longest wait for an overloaded step's backlog to clear
SCHEDULE_WAIT_S = 10.0  # open model: the longest wait for open_model.json to cover a hold
PROVISION_MAX_S = 300.0  # a --target seeded through its API: the longest wait for its users
# A --target seeded through its API creates this many users at most (teams and projects in the
# shape's proportions), and the simulated users share them (scenarios/runtime.py cycles over
# the seed). The reference's seed goes straight into its database, 10,000 users in seconds;
# through an API each costs a sign-up and a sign-in at the target's pace: fastapi-users'
# example app hashed 7 a second, so the capacity shape's 10,000 would take 48 minutes, longer
# than the whole search may. 200 take about a minute there.
API_SEED_USERS = 200
# kept free at the end of --max-time for stopping Locust and the service and writing the answer
TEARDOWN_S = 60.0
TEARDOWN_SHARE = 0.1  # of a short --max-time
PROGRESS_S = 10.0
CAPACITY_SHAPE = "capacity"  # the name the budgets' `shapes` see for a step


@dataclasses.dataclass(frozen=True)
class StepPlan:
    """One step as the shape describes it."""

    warmup_s: float
    hold_s: float
    spawn_rate: float
    start: float
    open_users: int


def _step_plan(opts: CapacityOptions, shape: Shape) -> StepPlan:
    """The shape is one step: warm-up, its last stage's hold, users and spawn rate."""
    last = shape.stages[-1]
    users = max(stage.users for stage in shape.stages)
    mean_wait = sum(shape.wait_s) / 2 or 1.0
    start = opts.start
    if start is None:
        start = float(users) if not opts.open_model else max(1.0, round(users / mean_wait))
    return StepPlan(
        warmup_s=opts.warmup_s if opts.warmup_s is not None else shape.warmup_s,
        hold_s=opts.hold_s if opts.hold_s is not None else last.duration_s,
        spawn_rate=opts.spawn_rate if opts.spawn_rate is not None else last.spawn_rate,
        start=start,
        open_users=users,
    )


def _api_seed(opts: CapacityOptions, shape: Shape) -> tuple[int, int, int] | None:
    """The seed's users, teams and projects when it is provisioned through a --target's API
    (see API_SEED_USERS); None (the shape's) for the reference or --fixtures."""
    if opts.target is None or opts.fixtures is not None or shape.seed_users <= API_SEED_USERS:
        return None
    share = API_SEED_USERS / shape.seed_users

    def scaled(count: int) -> int:
        return max(1, round(count * share)) if count else 0

    return API_SEED_USERS, scaled(shape.seed_teams), scaled(shape.seed_projects)


def _run_options(
    opts: CapacityOptions,
    plan_path: Path,
    first_rate: float | None,
    seed: tuple[int, int, int] | None,
) -> RunOptions:
    users, teams, projects = seed if seed is not None else (None, None, None)
    return RunOptions(
        shape=opts.shape,
        target=opts.target,
        api_file=opts.api_file,
        service_profile=opts.service_profile,
        processes=opts.processes,
        out=opts.out,
        open_rate=first_rate,
        database=opts.database,
        budgets_file=opts.budgets_file,
        shapes_file=opts.shapes_file,
        workers=opts.workers,
        use_redis=opts.use_redis,
        startup_timeout_s=opts.startup_timeout_s,
        max_duration_s=opts.max_time_s,
        workload_file=opts.workload_file,
        fixtures=opts.fixtures,
        capacity_plan=plan_path,
        seed_users=users,
        seed_teams=teams,
        seed_projects=projects,
    )


def execute_capacity(opts: CapacityOptions) -> int:
    """Search, write the answer, return the exit code (0 reached --require, 1 not, 3 invalid)."""
    began = time.time()
    check(opts)
    try:
        shape = load_shapes(opts.shapes_file).get(opts.shape)
    except ScenarioConfigError as exc:
        raise ConfigError(str(exc)) from None
    if shape is None:
        raise ConfigError(f"shape {opts.shape!r} is not in {opts.shapes_file}; give --shape NAME")
    step_plan = _step_plan(opts, shape)
    if opts.max_level is not None and step_plan.start > opts.max_level:
        raise UsageError(
            f"the level range is empty: the first level, {step_plan.start:g}, is above "
            f"--max-level {opts.max_level:g}; give --start at or under it"
        )
    first_rate = step_plan.start if opts.open_model else None
    seed = _api_seed(opts, shape)
    if seed is not None:
        say(
            f"seeding {seed[0]} users through the target's API (the shape's "
            f"{shape.seed_users:,} would cost as many sign-ups and sign-ins at the target's "
            "pace); the simulated users share them. --fixtures gives a seed of your own."
        )
    plan = plan_run(_run_options(opts, Path("capacity_plan.json"), first_rate, seed))
    ropts, api, info, budgets = plan.opts, plan.api, plan.shape, plan.budgets
    target, profile = plan.target, plan.profile
    if target is not None:
        try:
            check_reachable(target)
        except TargetUnreachableError as exc:
            raise UsageError(str(exc)) from None
    run_dir, run_id = _make_run_dir(opts.out, make_run_id(f"capacity-{opts.shape}", profile))
    plan_path = run_dir / "capacity_plan.json"
    ropts = dataclasses.replace(ropts, capacity_plan=plan_path)
    config = initial_config(ropts, info, run_id, target, profile, api)
    search = Search(
        start=step_plan.start,
        factor=opts.factor,
        ratio=opts.ratio,
        max_level=opts.max_level if opts.max_level is not None else math.inf,
        min_level=opts.min_level,
        whole=not opts.open_model,
    )
    config["capacity"] = {
        "model": "open" if opts.open_model else "closed",
        "unit": "requests/s" if opts.open_model else "users",
        "start": step_plan.start,
        "factor": opts.factor,
        "ratio": opts.ratio,
        "max_level": opts.max_level,
        "warmup_s": step_plan.warmup_s,
        "hold_s": step_plan.hold_s,
        "spawn_rate": step_plan.spawn_rate,
        "extensions": opts.extensions,
        "max_time_s": opts.max_time_s,
        "open_users": step_plan.open_users if opts.open_model else None,
    }
    state = RunState(
        run_dir=run_dir,
        run_id=run_id,
        config=config,
        meta=initial_meta(ropts, info, run_id),
        shape=dataclasses.replace(info, duration_s=opts.max_time_s),
    )
    controller = Controller(opts, step_plan, search, budgets, state, began)
    controller.write_level(search.next_level() or step_plan.start)
    say(
        f"capacity {run_id}: {run_dir}\n"
        f"  {config['capacity']['model']} model in {config['capacity']['unit']}: from "
        f"{step_plan.start:g}, x{opts.factor:g} until a budget fails, then bisect to "
        f"{opts.ratio:.0%}; each step {step_plan.warmup_s:g} s warm-up + {step_plan.hold_s:g} s "
        f"hold; stops within {opts.max_time_s:.0f} s"
    )
    error = load_and_clean_up(state, ropts, target, follow=controller.follow)
    if state.interrupted is not None:
        search.stop(f"interrupted: {state.interrupted}")
    answer = write_outputs(run_dir, state, search, controller.steps, budgets, opts, began)
    if error is not None and not controller.steps:
        raise error
    say(f"report: {run_dir / 'report.html'}")
    for line in answer["lines"]:
        say(line)
    return _exit_code(search, controller.steps, opts, state)


def _exit_code(search: Search, steps: list[Step], opts: CapacityOptions, state: RunState) -> int:
    if search.passed is None and not any(s.outcome is Outcome.FAIL for s in steps):
        return EXIT_INVALID  # nothing judged, or every step invalid: no answer
    if state.interrupted is not None:
        return EXIT_INVALID
    capacity = search.passed or 0.0
    if opts.require is not None:
        return EXIT_PASS if capacity >= opts.require else EXIT_FAIL
    return EXIT_PASS if search.passed is not None else EXIT_FAIL


class Controller:
    """Steers the Locust run through the search's steps (runexec's `follow`)."""

    def __init__(
        self,
        opts: CapacityOptions,
        plan: StepPlan,
        search: Search,
        budgets: Budgets,
        state: RunState,
        began: float,
    ) -> None:
        self.opts = opts
        self.plan = plan
        self.search = search
        self.budgets = budgets
        self.state = state
        self.began = began
        teardown = min(TEARDOWN_S, max(10.0, TEARDOWN_SHARE * opts.max_time_s))
        self.deadline = began + opts.max_time_s - teardown
        self.steps: list[Step] = []
        self.level: Level | None = None
        self.stats: StatsHistoryTail | None = None
        self._next_line = 0.0
        self._catch_up_s = 0.0  # open model, after a drain: until every user has a new slot
        self.settle_s = SETTLE_S[False]  # set from the run's processes in follow()

    # -- the plan file ----------------------------------------------------------------------

    def write_level(self, level: float, stop: bool = False) -> None:
        users = self.plan.open_users if self.opts.open_model else int(level)
        rate = level if self.opts.open_model else None
        self.level = Level(users, self.plan.spawn_rate, rate, stop)
        assert self.state.run_dir is not None
        PlanFile.write(self.state.run_dir / "capacity_plan.json", self.level)

    # -- following the run ------------------------------------------------------------------

    def follow(
        self, state: RunState, ropts: RunOptions, stats: StatsHistoryTail, locust_started: float
    ) -> None:
        self.stats = stats
        self.settle_s = SETTLE_S[(ropts.processes or 1) == 1]
        groups = CpuGroups(
            service=state.service.pid if state.service is not None else self.opts.target_pid,
            generator=state.locust.pid if state.locust is not None else None,
        )
        try:
            if self.opts.target is not None and self.opts.fixtures is None:
                self._wait_provisioned()
            while (level := self.search.next_level()) is not None:
                needed = self._step_estimate(level)
                left = self.deadline - time.time()
                if needed > left:
                    self.search.stop(
                        f"time: the next step ({level:g}) needs about {needed:.0f} s and "
                        f"{max(0.0, left):.0f} s are left of --max-time {self.opts.max_time_s:.0f}"
                    )
                    break
                step = self._step(level, groups)
                self.search.record(level, step.outcome)
                if step.outcome is Outcome.INVALID and self.search.passed is None:
                    self.search.stop(
                        "the first level tried was invalid: " + step.invalid_reasons[0]
                    )
                    break
        finally:
            self.write_level(self.level.users if self.level else 0, stop=True)
            self._wait_locust_end(30.0)

    def _step_estimate(self, level: float) -> float:
        ramp = 2.0
        if not self.opts.open_model:
            previous = self.steps[-1].level if self.steps else 0.0
            ramp += abs(level - previous) / self.plan.spawn_rate
        return ramp + self.plan.warmup_s + self.plan.hold_s + self.settle_s + 5.0

    def _step(self, level: float, groups: CpuGroups) -> Step:
        index = len(self.steps) + 1
        phase = self.search.phase
        unit = "requests/s" if self.opts.open_model else "users"
        label = f"step {index} ({phase}) {level:g} {unit}"
        if self.opts.open_model and self.steps and not self.steps[-1].outcome.passed:
            self._drain(label)
        say(f"{label}: ramping")
        self.write_level(level)
        self._ramp(level, label)
        self._sleep(self.plan.warmup_s, f"{label}: warm-up")
        hold_from = time.time()
        before = take_snapshot(groups, hold_from)
        holds = 0
        while True:
            holds += 1
            self._sleep(self.plan.hold_s, f"{label}: hold {holds}", since=hold_from)
            hold_to = time.time()
            after = take_snapshot(groups, hold_to)
            self._sleep(self.settle_s, f"{label}: judging")
            if self.opts.open_model:
                self._await_schedule(hold_to, level, label)
            step = self._judge(index, level, phase, hold_from, hold_to, holds)
            step.cpu = CpuSplit.between(before, after, groups.service is not None, _cores())
            lengthen = (
                step.outcome is Outcome.INCONCLUSIVE
                and holds <= self.opts.extensions
                and time.time() + self.plan.hold_s + self.settle_s < self.deadline
            )
            if not lengthen:
                break
            say(f"{label}: inconclusive ({', '.join(step.limited_by)}): hold lengthened")
        self.steps.append(step)
        say(_step_line(step, unit))
        return step

    def _judge(
        self, index: int, level: float, phase: str, start: float, end: float, holds: int
    ) -> Step:
        assert self.state.run_dir is not None
        summary = judge_window(
            self.state.run_dir, self.budgets, start, end, shape_name=CAPACITY_SHAPE
        )
        rate = level if self.opts.open_model else None
        outcome, limited, rows, invalid, notes = judge_step(summary, open_rate=rate)
        # the hold's requests (setup excepted), for its throughput, mean and cache tiers
        store = SampleStore(self.state.run_dir, window=(start, end))
        try:
            store.judge_from(start)
            held = store.frame(("latency_ms", "endpoint", "st_cache"), scope="requests")
        finally:
            store.close()
        latencies = held["latency_ms"].to_numpy()
        tiers = cache_tiers(held)
        users = self._mean_users(start, end)
        return Step(
            index=index,
            level=level,
            phase=phase,
            users=users,
            open_rate=rate,
            hold_from=start,
            hold_to=end,
            requests=len(held),
            throughput_rps=float(len(held)) / (end - start),
            mean_latency_ms=float(np.mean(latencies)) if len(latencies) else None,
            outcome=outcome,
            limited_by=limited,
            budgets=rows,
            invalid_reasons=invalid,
            notes=notes,
            holds=holds,
            hit_rate=hit_rate_of(rows),
            cache_tiers=tiers,
        )

    def _mean_users(self, start: float, end: float) -> float | None:
        """The users Locust ran over the hold, from the watcher's samples (each second)."""
        assert self.state.run_dir is not None
        from velro_perf.reports.loading import read_jsonl

        rows = read_jsonl(self.state.run_dir / "generator.jsonl")
        seen = [
            float(r["users"])
            for r in rows
            if isinstance(r.get("users"), int | float) and start <= float(r.get("ts", 0)) < end
        ]
        return sum(seen) / len(seen) if seen else None

    # -- waiting ----------------------------------------------------------------------------

    def _wait_provisioned(self) -> None:
        """A --target seeded through its API: Locust starts its users only once the seed is
        registered, so the first step waits for them (the stats history lags up to 10 s)."""

        def started() -> bool:
            latest = self.stats.latest() if self.stats is not None else None
            return latest is not None and latest.users > 0

        what = "provisioning the seed through the target's API"
        if not self._wait_until(started, PROVISION_MAX_S, what):
            say(f"no Locust users after {PROVISION_MAX_S:.0f} s of provisioning; going on")

    def _drain(self, label: str) -> None:
        """Open model, after a step that did not pass: the requests it left in flight (up to
        the generator's bound) would be answered during the next step's warm-up and hold, so
        the rate drops to a trickle until they are done (open_model.json: started - completed)."""
        # Each user sleeps until the slot it claimed: at a trickle of r a second, its next one
        # is up to users / r seconds away, and it takes up the next step's rate only then. Two
        # slots a second per user keep that under 2 s, which the next ramp waits out.
        users = self.plan.open_users
        trickle = max(1.0, self.plan.start / 20.0, users / 2.0)
        self.write_level(trickle)

        def in_flight() -> int:
            figures = self._open_model()
            return figures.get("started", 0) - figures.get("completed", 0)

        what = f"{label}: draining the last step's backlog"
        if not self._wait_until(lambda: in_flight() <= max(2.0, trickle), DRAIN_MAX_S, what):
            say(f"{label}: {in_flight()} requests in flight after {DRAIN_MAX_S:.0f} s of draining")
        self._catch_up_s = users / trickle

    def _await_schedule(self, hold_to: float, level: float, label: str) -> None:
        """Open model: wait until open_model.json covers the hold. The locustfile writes it
        every 2 s, later when the loop is busy; a second's intended starts are booked when
        users claim its slots (up to users / rate ahead) and its starts only as they come, so
        a copy taken within the hold counts the claimed, not yet started slots as late."""
        ahead = self.plan.open_users / level if level > 0 else 0.0
        # the hold's last whole second ends up to 1 s after it (reports/window.py)
        covered = hold_to + 1.0 + ahead

        def ready() -> bool:
            return self._open_model().get("covered_until", 0.0) >= covered

        what = f"{label}: waiting for the schedule's figures"
        if not self._wait_until(ready, SCHEDULE_WAIT_S, what, interval_s=0.5):
            say(f"{label}: open_model.json did not cover the hold after {SCHEDULE_WAIT_S:.0f} s")

    def _open_model(self) -> OpenModelFile:
        """open_model.json as the locustfile last wrote it ({} before it has)."""
        assert self.state.run_dir is not None
        return self.state.folder.open_model() or {}

    def _wait_until(
        self, ready: Callable[[], bool], max_s: float, what: str, interval_s: float = 1.0
    ) -> bool:
        """Poll `ready` every `interval_s`, the progress line saying `what`, until it holds;
        False when `max_s` passed first."""
        limit = time.time() + max_s
        while time.time() < limit:
            if ready():
                return True
            self._sleep(interval_s, what)
        return False

    def _ramp(self, level: float, label: str) -> None:
        if self.opts.open_model:
            self._sleep(max(1.0, self._catch_up_s), f"{label}: ramp")
            self._catch_up_s = 0.0
            return
        # Locust spawns at its rate in 1-s batches; its history CSV, flushed every 10 s, would
        # only tell later, so the ramp is its computed time (the warm-up follows anyway)
        previous = self.steps[-1].level if self.steps else 0.0
        self._sleep(abs(level - previous) / self.plan.spawn_rate + 1.0, f"{label}: ramp")

    def _sleep(self, seconds: float, what: str, since: float | None = None) -> None:
        end = time.time() + seconds
        origin = since if since is not None else time.time()
        while True:
            now = time.time()
            if now >= end:
                return
            self._check_alive()
            if now >= self._next_line:
                self._progress(what, now - origin)
                self._next_line = now + PROGRESS_S
            time.sleep(min(0.5, end - now))

    def _check_alive(self) -> None:
        state = self.state
        if state.locust is not None and state.locust.poll() is not None:
            raise RunInterrupted(
                f"error: Locust exited (code {state.locust.poll()}) mid-search; see "
                f"{state.run_dir / 'locust.log'}"
            )
        if state.service is not None and not state.service.alive():
            raise RunInterrupted(
                f"crash: the reference service exited; see {state.service.log_path}"
            )

    def _progress(self, what: str, elapsed: float) -> None:
        latest = self.stats.latest() if self.stats is not None else None
        total = time.time() - self.began
        parts = [f"[{total:5.0f}/{self.opts.max_time_s:.0f} s]", f"{what} {elapsed:4.0f} s"]
        if latest is not None:
            parts.append(f"users {latest.users}  rps {latest.rps:.1f}  failures {latest.failures}")
        watcher = self.state.watcher
        if watcher is not None and watcher.last:
            parts.append(f"generator CPU {watcher.last['cpu_percent_max']:.0f} %")
        say("  ".join(parts))

    def _wait_locust_end(self, seconds: float) -> None:
        locust = self.state.locust
        limit = time.time() + seconds
        while locust is not None and locust.poll() is None and time.time() < limit:
            time.sleep(0.5)


def _cores() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _fmt(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _step_line(step: Step, unit: str) -> str:
    parts = [
        f"step {step.index}: {step.level:g} {unit}: {step.outcome.value.upper()}",
        f"{step.throughput_rps:.1f} req/s over {step.hold_s:.0f} s",
    ]
    for row in step.budgets:
        if row["limiting"] or row["kind"] == "hit_rate":
            unit_ = " ms" if row["kind"] == "latency" else ""
            parts.append(
                f"{row['id']} {_fmt(row['measured'], 3 if unit_ == '' else 1)}{unit_} "
                f"[{_fmt(row['ci_low'], 3 if unit_ == '' else 1)}, "
                f"{_fmt(row['ci_high'], 3 if unit_ == '' else 1)}] {row['verdict']}"
            )
    cpu = step.cpu_per_request_ms()
    if cpu is not None:
        parts.append(
            "CPU ms/request: "
            + ", ".join(f"{k} {_fmt(v, 2)}" for k, v in cpu.items() if v is not None)
        )
    for reason in step.invalid_reasons:
        parts.append(f"invalid: {reason}")
    return "\n    ".join(parts)

"""A window of a run judged as if it were a run of its own, by the gate's own code.

A capacity search (velro-perf capacity) holds several levels in one Locust run, one after the
other; each step's hold is a window [start, end) of the run's files. `WindowRun` is the run
folder seen through that window: samples, metrics scrapes, generator samples and Locust's
history up to `end`, with the end of warm-up at `start`. `reports.analysis.summarize_data`
then judges every budget on the hold exactly as the gate judges a run (the same percentile
rule, intervals, hit-rate definition and validity checks); nothing is computed twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import pandas as pd

from velro_perf.reports.analysis import summarize_data
from velro_perf.reports.budgets import Budgets
from velro_perf.reports.loading import RunData
from velro_perf.reports.runfiles import OpenModelFile, RunConfig, RunMeta, Summary, WorkerHealth
from velro_perf.reports.samples import SampleStore

__all__ = ["WindowRun", "judge_window"]


@dataclass
class WindowRun(RunData):
    """`run_dir` from `start` (the end of warm-up) to `end` (epoch seconds)."""

    start: float = 0.0
    end: float = 0.0
    shape_name: str | None = None  # the budgets' `shapes` see this name (None: the run's)

    @cached_property
    def meta(self) -> RunMeta:
        meta = dict(super().meta)
        meta["measured_from"] = self.start
        meta["complete"] = True  # the window was held whole, whatever became of the run
        meta["interrupted"] = None
        return cast(RunMeta, meta)

    @cached_property
    def config(self) -> RunConfig:
        config = dict(super().config)
        if self.shape_name is not None:
            config["shape"] = self.shape_name
        return cast(RunConfig, config)

    @cached_property
    def measured_from(self) -> float:
        return self.start

    @cached_property
    def samples(self) -> SampleStore:
        """The samples started before `end`, judged from `start` (the stalls left out as in a
        run of its own)."""
        store = SampleStore(self.run_dir, window=(0.0, self.end))
        crossed = [(s.worker, s.start, s.end) for s in self.stalls.stalls]
        store.judge_from(self.start, stalls=crossed)
        return store

    @cached_property
    def metrics(self) -> list[dict[str, Any]]:
        # a scrape at `end` closes the window's counters; later ones belong to the next step
        return [m for m in super().metrics if _ts(m) <= self.end]

    @cached_property
    def generator(self) -> pd.DataFrame:
        return _before(super().generator, self.end, inclusive=True)

    @cached_property
    def locust_history(self) -> pd.DataFrame:
        return _before(super().locust_history, self.end, inclusive=True)

    @cached_property
    def health(self) -> WorkerHealth:
        """The generator's health events in the window (its stalls are cut by `samples`)."""
        health = super().health
        if "events" not in health:
            return health
        return {
            **health,
            "events": [e for e in health["events"] if self.start <= _ts(e) <= self.end],
        }

    @cached_property
    def open_model(self) -> OpenModelFile | None:
        """The open model's schedule counted over the window's seconds."""
        loaded = super().open_model
        if loaded is None or loaded.get("mode") != "open":
            return loaded
        return _open_window(loaded, self.start, self.end)


def _open_window(loaded: OpenModelFile, start: float, end: float) -> OpenModelFile:
    """open_model.json over [start, end): the intended and actual starts of its seconds. A
    start that slipped out of its second counts as late here (the file keeps no per-second
    count of late starts): a generator that keeps its schedule starts each second's slots in
    that second, one that falls behind does not."""
    origin = float(loaded.get("started_at") or 0.0)
    intended = began = 0
    timeline = []
    for second, planned, started in loaded.get("timeline", []):
        if start <= origin + float(second) < end:
            intended += int(planned)
            began += int(started)
            timeline.append([second, planned, started])
    late = max(0, intended - began)
    return {
        **loaded,
        "scheduled": intended,
        "started": began,
        "late": late,
        "late_share": late / intended if intended else 0.0,
        "timeline": timeline,
    }


def _ts(row: Mapping[str, object]) -> float:
    value = row.get("ts")
    return float(value) if isinstance(value, int | float) else float("inf")


def _before(frame: pd.DataFrame, end: float, *, inclusive: bool = False) -> pd.DataFrame:
    if frame.empty or "ts" not in frame:
        return frame
    ts = frame["ts"].to_numpy()
    mask = ts <= end if inclusive else ts < end
    return frame.loc[mask].reset_index(drop=True)


def judge_window(
    run_dir: Path,
    budgets: Budgets,
    start: float,
    end: float,
    *,
    shape_name: str | None = None,
) -> Summary:
    """Every budget judged on [start, end) of the run in `run_dir` (a summary.json's content)."""
    window = WindowRun(Path(run_dir), start=start, end=end, shape_name=shape_name)
    return summarize_data(window, budgets)

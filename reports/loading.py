"""Reading a run directory (docs/run-format.md), tolerant of absent files.

The samples (millions of rows in a long run) are never loaded: reports.samples queries them in
place. Every other file is small and read into pandas. A file that is absent gives an empty
frame or {} so that a run against a backend without /performance/metrics still renders.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from velro_perf.reports.errors import RunDirError
from velro_perf.reports.runfiles import OpenModelFile, RunConfig, RunMeta, WorkerHealth
from velro_perf.reports.runfolder import RunFolder
from velro_perf.reports.samples import SampleStore, Totals
from velro_perf.reports.stalls import StallSet, stall_set

__all__ = [
    "RunData",
    "load_run",
    "read_jsonl",
    "read_locust_history",
    "read_locust_stats",
]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file; a truncated last line (a killed run) is skipped."""
    if not path.exists():
        return []
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue  # a line cut short when the run was interrupted
            if isinstance(obj, dict):
                out.append(obj)
    return out


def read_locust_stats(path: Path) -> pd.DataFrame:
    """locust_stats.csv with an `endpoint` column ("METHOD name"); empty when absent."""
    if not path.exists():
        return pd.DataFrame()
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return pd.DataFrame()
    if "Name" not in df:
        return pd.DataFrame()
    method = df["Type"].fillna("").astype(str) if "Type" in df else ""
    df["endpoint"] = (method + " " + df["Name"].astype(str)).str.strip()
    return df


def read_locust_history(path: Path) -> pd.DataFrame:
    """The aggregated rows of locust_stats_history.csv: ts, users, rps, fps; empty when absent."""
    if not path.exists():
        return pd.DataFrame(columns=["ts", "users", "rps", "fps"])
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return pd.DataFrame(columns=["ts", "users", "rps", "fps"])
    if "Name" in df:
        df = df[df["Name"] == "Aggregated"]
    out = pd.DataFrame(
        {
            "ts": _numeric(df, "Timestamp"),
            "users": _numeric(df, "User Count"),
            "rps": _numeric(df, "Requests/s"),
            "fps": _numeric(df, "Failures/s"),
        }
    )
    return out.dropna(subset=["ts"]).reset_index(drop=True)


def _numeric(df: pd.DataFrame, column: str) -> pd.Series:
    """A column as numbers (NaN where unparsable), all NaN when the column is absent."""
    if column not in df:
        return pd.Series(np.nan, index=df.index, dtype="float64")
    return pd.to_numeric(df[column], errors="coerce")


@dataclass
class RunData:
    """Everything in one run directory, each file read at most once, on first use."""

    run_dir: Path

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.run_dir)

    @cached_property
    def config(self) -> RunConfig:
        return self.folder.config()

    @cached_property
    def meta(self) -> RunMeta:
        return self.folder.meta()

    @cached_property
    def samples(self) -> SampleStore:
        """The run's samples, queried in place (reports.samples); its `judged` view holds the
        ones the budgets are judged on: after warm-up, never `setup`, never one in flight across
        a stall of its generator process (reports/stalls.py: the view `across_stalls`)."""
        store = SampleStore(self.run_dir)
        crossed = [(s.worker, s.start, s.end) for s in self.stalls.stalls]
        store.judge_from(self.measured_from_in(store), stalls=crossed)
        return store

    def measured_from_in(self, store: SampleStore) -> float:
        value = self.meta.get("measured_from")
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
        first = store.totals("samples").ts_min
        return float(first) if first is not None else 0.0

    @cached_property
    def measured_from(self) -> float:
        """The end of warm-up; the first sample when meta.json does not say."""
        return self.measured_from_in(self.samples)

    @cached_property
    def judged_totals(self) -> Totals:
        """Counts of the judged samples (many parts ask for them)."""
        return self.samples.totals("judged")

    @cached_property
    def health(self) -> WorkerHealth:
        """generator_health.json; {} when absent or unreadable."""
        return self.folder.generator_health() or {}

    @cached_property
    def open_model(self) -> OpenModelFile | None:
        """open_model.json; None when absent or unreadable."""
        return self.folder.open_model()

    @cached_property
    def stalls(self) -> StallSet:
        return stall_set(self.health)

    @cached_property
    def locust_stats(self) -> pd.DataFrame:
        return read_locust_stats(self.run_dir / "locust_stats.csv")

    @cached_property
    def locust_history(self) -> pd.DataFrame:
        return read_locust_history(self.run_dir / "locust_stats_history.csv")

    @cached_property
    def metrics(self) -> list[dict[str, Any]]:
        return read_jsonl(self.run_dir / "metrics.jsonl")

    @cached_property
    def generator(self) -> pd.DataFrame:
        rows = read_jsonl(self.run_dir / "generator.jsonl")
        cols = [
            "ts",
            "cpu_percent_max",
            "cpu_percent_total",
            "rss_mb",
            "processes",
            "users",
            "intended_rps",
            "achieved_rps",
        ]
        df = pd.DataFrame(rows, columns=cols)
        for c in cols:
            df[c] = _numeric(df, c)
        return df

    @property
    def shape(self) -> str | None:
        value = self.config.get("shape")
        return str(value) if value is not None else None


def load_run(run_dir: Path | str) -> RunData:
    """A lazily read run directory; raises RunDirError when the folder does not exist."""
    p = Path(run_dir)
    if not p.is_dir():
        raise RunDirError(f"run directory {str(p)!r} does not exist; give a folder under runs/")
    return RunData(p)

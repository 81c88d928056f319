"""Reading a run directory (docs/run-format.md) into pandas, tolerant of absent files.

samples.csv of a one-hour run holds a million rows or more: it is read once, with explicit
dtypes and only the columns needed (the C parser, categorical endpoint/category columns), which
keeps a million rows near 60 MB. Every other file is small. A file that is absent gives an empty
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

from reports.errors import RunDirError
from reports.runfiles import RunConfig, RunMeta, read_config, read_json, read_meta
from reports.stalls import StallSet, stall_set

__all__ = [
    "SAMPLE_COLUMNS",
    "RunData",
    "load_run",
    "read_json",
    "read_jsonl",
    "read_locust_history",
    "read_locust_stats",
    "read_samples",
]

SAMPLE_COLUMNS: dict[str, Any] = {
    "ts": "float64",
    "endpoint": "category",
    "category": "category",
    "latency_ms": "float64",
    "status": "int32",
    "expected": "int8",
    "worker": "category",
    "st_app": "float32",
    "st_db": "float32",
    "st_hash": "float32",
    "st_cache": "category",
}
# the columns every analysis needs; Server-Timing ones are read only when present, and
# `worker` to join the generator's stalls (reports/stalls.py)
_CORE = ("ts", "endpoint", "category", "latency_ms", "status", "expected")
_OPTIONAL = ("st_app", "st_db", "st_hash", "st_cache")
_WORKER = "worker"


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


def read_samples(path: Path) -> pd.DataFrame:
    """samples.csv with explicit dtypes, only the known columns; empty frame if absent."""
    if not path.exists():
        return _empty_samples()
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return _empty_samples()
    missing = [c for c in _CORE if c not in header]
    if missing:
        raise RunDirError(
            f"{path} lacks column {missing[0]!r}; it must have the header of docs/run-format.md"
        )
    cols = [c for c in (*_CORE, _WORKER, *_OPTIONAL) if c in header]
    dtypes = {c: SAMPLE_COLUMNS[c] for c in cols}
    # status/expected may be empty on a truncated row: read as float then cast
    dtypes["status"] = "float32"
    dtypes["expected"] = "float32"
    try:
        df = pd.read_csv(path, usecols=cols, dtype=dtypes, engine="c", on_bad_lines="skip")
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} cannot be parsed ({exc}); check the file") from exc
    df = df.dropna(subset=["ts", "latency_ms"])
    df["status"] = df["status"].fillna(0).astype("int32")
    df["expected"] = df["expected"].fillna(0).astype("int8")
    if _WORKER not in df:
        df[_WORKER] = pd.Series("local", index=df.index, dtype="category")
    for c in _OPTIONAL:
        if c not in df:
            df[c] = pd.Series(np.nan, index=df.index, dtype="float32") if c != "st_cache" else None
    return df.reset_index(drop=True)


def _empty_samples() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in SAMPLE_COLUMNS.items()})


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

    @cached_property
    def config(self) -> RunConfig:
        return read_config(self.run_dir)

    @cached_property
    def meta(self) -> RunMeta:
        return read_meta(self.run_dir)

    @cached_property
    def samples(self) -> pd.DataFrame:
        return read_samples(self.run_dir / "samples.csv")

    @cached_property
    def measured_from(self) -> float:
        """The end of warm-up; the first sample when meta.json does not say."""
        value = self.meta.get("measured_from")
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
        ts = self.samples["ts"]
        return float(ts.min()) if len(ts) else 0.0

    @cached_property
    def judged(self) -> pd.DataFrame:
        """The samples the budgets are judged on: after warm-up, never `setup`, never one in
        flight across a stall of its generator process (reports/stalls.py)."""
        s = self.samples
        mask = (s["ts"].to_numpy() >= self.measured_from) & (s["category"] != "setup").to_numpy()
        return s.loc[mask & ~self._across_stalls].reset_index(drop=True)

    @cached_property
    def _across_stalls(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        return self.stalls.in_flight(self.samples)

    @cached_property
    def across_stalls(self) -> pd.DataFrame:
        """The samples after warm-up (setup excepted) left out for a stall of their process."""
        s = self.samples
        mask = (s["ts"].to_numpy() >= self.measured_from) & (s["category"] != "setup").to_numpy()
        return s.loc[mask & self._across_stalls].reset_index(drop=True)

    @cached_property
    def health(self) -> dict[str, Any]:
        """generator_health.json; {} when absent or unreadable."""
        try:
            loaded = json.loads((self.run_dir / "generator_health.json").read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

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

    def json_file(self, name: str) -> dict[str, Any] | None:
        """A JSON object file of the run folder (generator_health.json, open_model.json);
        None when absent or unreadable."""
        try:
            loaded = json.loads((self.run_dir / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return loaded if isinstance(loaded, dict) else None

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

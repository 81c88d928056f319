"""runs/history.csv: one row per finished run, for trends across runs of one configuration.

Columns (docs/run-format.md): run_id, started_at, config_hash, shape, service_profile, target,
verdict, requests, rps, then one column per budget id with its measured value. A budget file
that gains an id later adds a column: the file is rewritten with the union of columns. A run
appended twice (a re-judged run) replaces its earlier row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from velro_perf.reports.runfiles import Summary

__all__ = ["BASE_COLUMNS", "append_history", "history_path", "read_history"]

BASE_COLUMNS = [
    "run_id",
    "started_at",
    "config_hash",
    "shape",
    "service_profile",
    "target",
    "verdict",
    "requests",
    "rps",
]


def history_path(runs_root: Path) -> Path:
    return Path(runs_root) / "history.csv"


def _row(summary: Summary) -> dict[str, Any]:
    config, meta = summary["config"], summary["meta"]
    row: dict[str, Any] = {
        "run_id": summary["run_id"],
        "started_at": summary["started_at"] or meta.get("started_at"),
        "config_hash": summary["config_hash"] or config.get("config_hash"),
        "shape": summary["shape"] or config.get("shape"),
        "service_profile": summary["service_profile"] or config.get("service_profile"),
        "target": summary["target"] or config.get("target"),
        "verdict": str(summary["verdict"]),
        "requests": summary["requests"],
        "rps": summary["rps"],
    }
    for b in summary["budgets"]:
        row[b["id"]] = b["measured"]
    return row


def read_history(runs_root: Path) -> pd.DataFrame:
    """history.csv as a DataFrame (empty, with the base columns, when there is none)."""
    path = history_path(runs_root)
    if not path.exists():
        return pd.DataFrame(columns=BASE_COLUMNS)
    try:
        return pd.read_csv(path, dtype={"run_id": str, "config_hash": str})
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=BASE_COLUMNS)


def append_history(runs_root: Path, summary: Summary) -> Path:
    """Add (or replace) the summary's row in runs_root/history.csv; return the file's path."""
    path = history_path(runs_root)
    row = pd.DataFrame([_row(summary)])
    old = read_history(runs_root)
    if (
        not old.empty
        and set(row.columns) <= set(old.columns)
        and str(row.at[0, "run_id"]) not in set(old["run_id"].astype(str))
    ):
        # the common case: append one line, keep the file's column order
        row.reindex(columns=old.columns).to_csv(path, mode="a", header=False, index=False)
        return path
    if not old.empty:
        old = old[old["run_id"].astype(str) != str(row.at[0, "run_id"])]
        frames = [f for f in (old, row) if not f.empty]
        merged = pd.concat(frames, ignore_index=True)
    else:
        merged = row
    columns = BASE_COLUMNS + sorted(c for c in merged.columns if c not in BASE_COLUMNS)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    merged.reindex(columns=columns).to_csv(tmp, index=False)
    tmp.replace(path)
    return path

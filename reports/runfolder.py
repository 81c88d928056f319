"""A run folder's JSON files: where they are, the one reader and the one atomic writer.

Every part that writes a run's JSON files (velro_perf's runner, the Locust hooks, the gate,
calibration, capacity) writes through ``RunFolder``, and every part that reads them (validity,
the reports, calibration, capacity) reads through it, so that the file names, the atomic
replace and the tolerance of absent files are in one place. The files' types are in
reports/runfiles.py; their keys are documented in docs/run-format.md, and
tests/test_run_format.py holds the two together.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from velro_perf.reports.errors import RunDirError
from velro_perf.reports.runfiles import (
    GeneratorActions,
    OpenModelFile,
    RunConfig,
    RunMeta,
    Summary,
    WorkerHealth,
)

__all__ = [
    "CONFIG",
    "GENERATOR_ACTIONS",
    "GENERATOR_HEALTH",
    "META",
    "OPEN_MODEL",
    "SUMMARY",
    "RunFolder",
    "read_json",
    "write_json",
]

CONFIG = "config.json"
META = "meta.json"
SUMMARY = "summary.json"
OPEN_MODEL = "open_model.json"
GENERATOR_HEALTH = "generator_health.json"
GENERATOR_ACTIONS = "generator_actions.json"


def write_json(path: Path, data: Mapping[str, object]) -> None:
    """Write a JSON object atomically (a temporary file, then a rename), so that a reader, or a
    run killed mid-write, never sees half a file. NaN and infinities become null (JSON has no
    such numbers), numpy scalars Python's, anything else unknown its string."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    text = json.dumps(_json_safe(data), indent=2, allow_nan=False, default=str)
    temporary.write_text(text + "\n", encoding="utf-8")
    os.replace(temporary, path)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file, {} when it is absent; RunDirError when it is not a JSON object."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise RunDirError(f"{path} is not readable ({exc}); re-run or remove it") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RunDirError(f"{path} is not readable JSON ({exc}); re-run or remove it") from exc
    if not isinstance(data, dict):
        raise RunDirError(f"{path} does not hold a JSON object; re-run or remove it")
    return data


def _json_safe(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class RunFolder:
    """One run's folder (docs/run-format.md). A file that is absent reads as {} (or None where
    its absence means something: no summary yet, no open model, no health record)."""

    path: Path

    def file(self, name: str) -> Path:
        return Path(self.path) / name

    # -------------------------------------------------------------- the runner's files

    def config(self) -> RunConfig:
        return cast(RunConfig, read_json(self.file(CONFIG)))

    def write_config(self, config: RunConfig) -> None:
        write_json(self.file(CONFIG), config)

    def meta(self) -> RunMeta:
        return cast(RunMeta, read_json(self.file(META)))

    def write_meta(self, meta: RunMeta) -> None:
        write_json(self.file(META), meta)

    def summary(self) -> Summary | None:
        """summary.json; None when absent or written by an older gate (lacking a key of
        ``Summary``): such a run is judged again rather than its holes filled."""
        data = read_json(self.file(SUMMARY))
        if not Summary.__required_keys__ <= data.keys():
            return None
        return cast(Summary, data)

    def write_summary(self, summary: Mapping[str, object]) -> Path:
        """summary.json (a load run's ``Summary``, or velro-perf capacity's own); its path."""
        path = self.file(SUMMARY)
        write_json(path, summary)
        return path

    # -------------------------------------------------------------- the locustfile's files

    def open_model(self) -> OpenModelFile | None:
        return cast("OpenModelFile | None", self._optional(OPEN_MODEL))

    def write_open_model(self, figures: OpenModelFile) -> None:
        write_json(self.file(OPEN_MODEL), figures)

    def generator_health(self) -> WorkerHealth | None:
        return cast("WorkerHealth | None", self._optional(GENERATOR_HEALTH))

    def write_generator_health(self, health: WorkerHealth) -> None:
        write_json(self.file(GENERATOR_HEALTH), health)

    def generator_actions(self) -> GeneratorActions | None:
        return cast("GeneratorActions | None", self._optional(GENERATOR_ACTIONS))

    def write_generator_actions(self, actions: GeneratorActions) -> None:
        write_json(self.file(GENERATOR_ACTIONS), actions)

    def _optional(self, name: str) -> dict[str, Any] | None:
        """A file the locustfile rewrites as the run goes: None when absent or unreadable (a
        run killed before its first flush), never an error that stops the judging."""
        try:
            return read_json(self.file(name)) or None
        except RunDirError:
            return None

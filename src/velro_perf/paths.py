"""Where the suite's files are, and how to call the tools it drives.

The data files (shapes, budgets, API files, the locustfile) are package data, found by
`velro_perf.suitedata` and re-exported here under the names the commands use; run folders go
under `--out` (default `runs/` in the current directory), so the command works from any
folder, installed or in a clone.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from velro_perf.suitedata import (
    api_file,
    budgets_file,
    data_root,
    fixtures_dir,
    locustfile,
    shapes_file,
    source_checkout,
)

__all__ = [
    "api_file",
    "budgets_file",
    "fixtures_dir",
    "locustfile",
    "project_root",
    "shapes_file",
    "tool_command",
]


def project_root() -> Path:
    """The clone the suite runs from; for an installed wheel, its data folder (not a git
    checkout, so a run's meta.json records no commit rather than another repository's)."""
    return source_checkout() or data_root()


def tool_command(name: str, module: str) -> list[str]:
    """The argv prefix that runs console script `name` of this interpreter's environment.

    The script beside `sys.executable` wins (the venv the suite is installed in), then one on
    PATH; when neither exists (the project is not installed yet) the module is run with this
    interpreter, so `velro` and `locust` are always the versions this environment holds.
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return [str(beside)]
    found = shutil.which(name)
    if found:
        return [found]
    return [sys.executable, "-m", module]

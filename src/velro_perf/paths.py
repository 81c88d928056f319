"""Where the suite's files are, and how to call the tools it drives.

The project root is found from this package's location (src/velro_perf/ -> root), so the
command works from any current directory; run folders go under `--out` (default `runs/` in the
current directory).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

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
    """The folder holding pyproject.toml, fixtures/ and locustfile.py."""
    return Path(__file__).resolve().parents[2]


def fixtures_dir() -> Path:
    return project_root() / "fixtures"


def locustfile() -> Path:
    return project_root() / "locustfile.py"


def shapes_file() -> Path:
    return fixtures_dir() / "shapes.toml"


def budgets_file() -> Path:
    return fixtures_dir() / "budgets.toml"


def api_file() -> Path:
    """The default API file: CONTRACT.md, which the reference service serves."""
    return project_root() / "targets" / "contract.toml"


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

"""Reading a TOML file of the scenarios' (shapes, workload), with one clear error when it is
missing or malformed."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from velro_perf.scenarios.errors import ScenarioConfigError

__all__ = ["read_toml"]


def read_toml(path: Path, what: str, option: str) -> dict[str, Any]:
    """The parsed ``path``; ``what`` names the file in errors (``"shapes file"``) and
    ``option`` is the flag that gives another (``"--velro-shapes"``)."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ScenarioConfigError(
            f"{what} {str(path)!r} does not exist; pass {option} FILE"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioConfigError(f"{what} {str(path)!r} is not valid TOML: {error}") from None

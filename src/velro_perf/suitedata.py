"""The suite's data files, read as package data: the one way any part finds them.

Shapes, budgets, workloads and story claims (``fixtures/``), the API files (``targets/``) and
the locustfile travel inside the package, under ``velro_perf/data/``, and are found with
``importlib.resources``, so an installed wheel works from any folder. In a clone those entries
are symbolic links to the repository's own ``fixtures/``, ``targets/`` and ``locustfile.py``
(the layout the project keeps); paths are returned resolved, so a clone's runs name the
repository's files and an installed tool's runs name the installed ones.

Paths, not ``Traversable``: Locust and the service are separate processes that are handed
file names. pip installs wheels as files, so the package is on the file system; a zipped
install is refused with that reason rather than failing later on a file name.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = [
    "api_file",
    "budgets_file",
    "data_root",
    "fixtures_dir",
    "locustfile",
    "resolve_api_file",
    "shapes_file",
    "source_checkout",
    "story_claims_file",
    "targets_dir",
    "workload_file",
]


def data_root() -> Path:
    """``velro_perf/data``: the folder every data file of the suite is under."""
    root = files("velro_perf") / "data"
    if not isinstance(root, Path):
        raise RuntimeError(
            f"velro_perf is installed as {type(root).__name__}, not as files; Locust and the "
            "service are given file names: install it with pip (unzipped)"
        )
    return root


def fixtures_dir() -> Path:
    """Shapes, budgets, workloads and story claims."""
    return (data_root() / "fixtures").resolve()


def targets_dir() -> Path:
    """The API files of the targets the suite knows (docs/api-file.md)."""
    return (data_root() / "targets").resolve()


def shapes_file() -> Path:
    return fixtures_dir() / "shapes.toml"


def budgets_file() -> Path:
    return fixtures_dir() / "budgets.toml"


def workload_file() -> Path:
    """The default mix of user classes, for a shape that names none."""
    return fixtures_dir() / "workload.toml"


def story_claims_file() -> Path:
    return fixtures_dir() / "story_claims.toml"


def api_file(name: str = "contract") -> Path:
    """An API file by name; the default is CONTRACT.md, which the reference service serves."""
    return targets_dir() / f"{name}.toml"


def resolve_api_file(given: str | Path) -> Path:
    """`given` when it exists; else the API file the suite ships under that name (``contract``,
    ``fastapi-users.toml``, ``targets/contract.toml``: an installed tool has no targets/ in
    the current folder); else `given` as it was, for the loader to name."""
    path = Path(given)
    if path.exists() or path.parent not in (Path("."), Path("targets")):
        return path
    shipped = api_file(path.name.removesuffix(".toml"))
    return shipped if shipped.is_file() else path


def locustfile() -> Path:
    return (data_root() / "locustfile.py").resolve()


def source_checkout() -> Path | None:
    """The repository clone the data comes from (a clone, an editable install), None for an
    installed wheel: its fixtures/ resolve into the clone, beside pyproject.toml."""
    root = fixtures_dir().parent
    return root if (root / "pyproject.toml").is_file() else None

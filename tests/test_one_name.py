"""The suite's packages have one name each: velro_perf.scenarios and velro_perf.reports.

The folders scenarios/ and reports/ stay at the top of the clone (the project's layout) and
reach the package through links; an import by the old top-level name would load a second
copy of a module beside the first (tests/conftest.py fails a run that did, at its end).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.helpers import ROOT
from velro_perf import suitedata

OLD_IMPORT = re.compile(r"^\s*(from|import)\s+(scenarios|reports)\b", re.MULTILINE)


def _python_files() -> list[Path]:
    skip = {".git", "__pycache__"}
    found = []
    for path in ROOT.rglob("*.py"):
        parts = set(path.relative_to(ROOT).parts)
        if parts & skip or any(p.startswith(".venv") for p in parts):
            continue
        found.append(path)
    return found


def test_no_file_imports_the_old_top_level_names() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0).strip()}"
        for path in _python_files()
        for match in OLD_IMPORT.finditer(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, "\n".join(offenders)


def test_the_package_reaches_the_clones_folders_through_its_links() -> None:
    package = ROOT / "src" / "velro_perf"
    for name in ("scenarios", "reports"):
        assert (package / name).resolve() == ROOT / name
    assert suitedata.fixtures_dir() == ROOT / "fixtures"
    assert suitedata.targets_dir() == ROOT / "targets"
    assert suitedata.locustfile() == ROOT / "locustfile.py"
    assert suitedata.source_checkout() == ROOT


def test_a_shipped_api_file_is_found_by_its_name_from_any_folder(tmp_path: Path) -> None:
    contract = ROOT / "targets" / "contract.toml"
    for given in ("contract", "contract.toml", "targets/contract.toml"):
        assert suitedata.resolve_api_file(given).resolve() == contract
    mine = tmp_path / "contract.toml"
    mine.write_text("")
    assert suitedata.resolve_api_file(mine) == mine  # a file that exists is taken as given
    assert suitedata.resolve_api_file("elsewhere/nothing.toml") == Path("elsewhere/nothing.toml")

"""docs/run-format.md is the run folder's contract: its key tables list exactly the keys of the
files' types (reports/runfiles.py), and a real run writes every key the tables mark `always` and
no key they do not list."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from tests.helpers import run_cli, shape_toml
from velro_perf.reports.loading import read_jsonl
from velro_perf.reports.runfiles import (
    GeneratorActions,
    GeneratorSample,
    MetricsScrape,
    OpenModelFigures,
    OpenModelFile,
    RunConfig,
    RunMeta,
    StallFigures,
    Summary,
    WorkerHealth,
)
from velro_perf.reports.runfolder import RunFolder, read_json

DOC = Path(__file__).resolve().parents[1] / "docs" / "run-format.md"

FILES: dict[str, type] = {
    "config.json": RunConfig,
    "meta.json": RunMeta,
    "open_model.json": OpenModelFile,
    "generator_health.json": WorkerHealth,
    "generator_actions.json": GeneratorActions,
    "summary.json": Summary,
    "generator.jsonl": GeneratorSample,  # every line
    "metrics.jsonl": MetricsScrape,
}
# types a file embeds whole and the doc describes elsewhere (a file of its own, or prose)
EMBEDDED = (RunConfig, RunMeta, WorkerHealth, OpenModelFigures, StallFigures)


def documented(name: str) -> dict[str, str]:
    """The keys of the doc's table under the heading `name`: key -> when it is written."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if re.fullmatch(rf"#+ {re.escape(name)}", line))
    keys: dict[str, str] = {}
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for key in re.findall(r"`([^`]+)`", cells[0]):
                keys[key] = cells[1]
    assert keys, f"no key table under '{name}' in {DOC}"
    return keys


def _typeddict_in(hint: Any) -> type | None:
    """The TypedDict a field holds (through `X | None`), or None."""
    if is_typeddict(hint):
        return typing.cast(type, hint)
    if get_origin(hint) in (typing.Union, types.UnionType):
        found = [arg for arg in get_args(hint) if is_typeddict(arg)]
        return found[0] if found else None
    return None


def typed_keys(cls: type, prefix: str = "") -> set[str]:
    """A TypedDict's keys, with the keys of the TypedDicts it nests as `outer.inner`."""
    keys = set()
    for key, hint in get_type_hints(cls).items():
        keys.add(prefix + key)
        inner = _typeddict_in(hint)
        if inner is not None and inner not in EMBEDDED:
            keys |= typed_keys(inner, f"{prefix}{key}.")
    return keys


def written_keys(data: dict[str, Any], documented: set[str], prefix: str = "") -> set[str]:
    """The keys a file holds, descending into an object where the doc lists its keys."""
    keys = set()
    for key, value in data.items():
        keys.add(prefix + key)
        if isinstance(value, dict) and any(k.startswith(f"{prefix}{key}.") for k in documented):
            keys |= written_keys(value, documented, f"{prefix}{key}.")
    return keys


@pytest.mark.parametrize("name", list(FILES))
def test_the_doc_lists_exactly_the_keys_of_the_files_types(name: str) -> None:
    doc = set(documented(name))
    typed = typed_keys(FILES[name])
    assert typed - doc == set(), f"keys of {FILES[name].__name__} missing from {DOC.name}"
    assert doc - typed == set(), f"keys in {DOC.name} that {FILES[name].__name__} lacks"


# long enough for every writer to have written once (the locustfile flushes every 2 s)
SHAPE = shape_toml(
    "format", warmup_s=1, wait_s=(0.2, 0.4), seed=(4, 1, 4), duration_s=6, users=2, spawn_rate=2
)


@pytest.mark.slow
def test_a_real_run_writes_what_the_doc_says(tmp_path: Path) -> None:
    shapes = tmp_path / "shapes.toml"
    shapes.write_text(SHAPE, encoding="utf-8")
    done = run_cli(
        "run", "--shape", "format", "--shapes", shapes, "--no-redis", cwd=tmp_path, timeout=180
    )
    assert done.returncode in (0, 1, 3), done.stdout + done.stderr
    (run,) = (tmp_path / "runs").glob("*-format-fixed")
    folder = RunFolder(run)
    for name in FILES:
        doc = documented(name)
        path = folder.file(name)
        read = read_jsonl(path) if name.endswith(".jsonl") else [read_json(path)]
        lines = [line for line in read if line]
        assert lines, f"the run wrote no {name}"
        written = set().union(*(written_keys(line, set(doc)) for line in lines))
        assert written - set(doc) == set(), f"{name} holds keys {DOC.name} does not list"
        always = {key for key, when in doc.items() if when == "always"}
        assert always - written == set(), f"{name} lacks keys {DOC.name} says are always there"

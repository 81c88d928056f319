"""Reading fixtures/budgets.toml, the one file of PRD budgets (schema: docs/run-format.md).

The file is validated as a whole when it is read, so that the gate, the report and the
benchmarks never meet a half-valid budget later: every problem is a BudgetError naming the
budget id, the key and the fix.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from velro_perf.reports.errors import BudgetError

__all__ = ["KINDS", "Budget", "Budgets", "load_budgets", "parse_budgets"]

KINDS = ("latency", "hit_rate", "error_rate", "users", "microbenchmark")
_ID = re.compile(r"^[a-z0-9_.]+$")
_KNOWN_KEYS = {
    "id",
    "prd",
    "requirement",
    "description",
    "kind",
    "endpoints",
    "operations",
    "percentile",
    "max",
    "min",
    "shapes",
    "benchmarks",
}


@dataclass(frozen=True)
class Budget:
    """One bound on one measured figure."""

    id: str
    requirement: str
    description: str
    kind: str
    max: float | None = None
    min: float | None = None
    percentile: float | None = None
    endpoints: tuple[str, ...] = ()
    # the API-file operations (docs/api-file.md) whose requests the budget judges; a run that
    # records its API (config.json `api`) is judged on their endpoints, else on `endpoints`
    operations: tuple[str, ...] = ()
    shapes: tuple[str, ...] | None = None
    benchmarks: tuple[str, ...] = ()
    # False: a budget of the suite's own, outside the PRD's rows (the report says so)
    prd: bool = True

    @property
    def bound(self) -> dict[str, float]:
        """The bound as summary.json writes it: {"max": 50.0} or {"min": 0.95}."""
        out: dict[str, float] = {}
        if self.max is not None:
            out["max"] = self.max
        if self.min is not None:
            out["min"] = self.min
        return out

    def applies_to(self, shape: str | None) -> bool:
        """A budget with `shapes` is judged only on those load shapes."""
        return self.shapes is None or (shape is not None and shape in self.shapes)


@dataclass(frozen=True)
class Budgets:
    """The whole budgets file, in file order."""

    prd: str
    items: tuple[Budget, ...] = field(default_factory=tuple)
    source: Path | None = None

    def __iter__(self) -> Iterator[Budget]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def by_id(self, budget_id: str) -> Budget:
        for b in self.items:
            if b.id == budget_id:
                return b
        raise KeyError(budget_id)

    def of_kind(self, kind: str) -> list[Budget]:
        return [b for b in self.items if b.kind == kind]


def load_budgets(path: Path | str) -> Budgets:
    """Read and validate a budgets file; raise BudgetError naming what is wrong and the fix."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BudgetError(
            f"budgets file {str(p)!r} does not exist; give the path of fixtures/budgets.toml"
        ) from None
    except OSError as exc:
        raise BudgetError(f"budgets file {str(p)!r} cannot be read ({exc}); check it") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BudgetError(
            f"budgets file {str(p)!r} is not valid TOML: {exc}; fix the syntax"
        ) from exc
    return parse_budgets(data, source=p)


def parse_budgets(data: dict[str, Any], *, source: Path | None = None) -> Budgets:
    """Validate the parsed TOML of a budgets file."""
    raw = data.get("budget")
    if not isinstance(raw, list) or not raw:
        raise BudgetError("budgets file has no [[budget]] tables; add at least one [[budget]]")
    seen: set[str] = set()
    items = []
    for i, entry in enumerate(raw):
        budget = _parse_one(entry, i)
        if budget.id in seen:
            raise BudgetError(
                f"budget id {budget.id!r} appears twice; give every [[budget]] a unique id"
            )
        seen.add(budget.id)
        items.append(budget)
    return Budgets(prd=str(data.get("prd", "")), items=tuple(items), source=source)


def _parse_one(entry: Any, index: int) -> Budget:
    if not isinstance(entry, dict):
        raise BudgetError(f"[[budget]] number {index + 1} is not a table; write it as [[budget]]")
    bid = entry.get("id")
    if not isinstance(bid, str) or not _ID.match(bid):
        raise BudgetError(
            f"[[budget]] number {index + 1} has id {bid!r}; "
            "give an id of lower-case letters, digits, '_' and '.', like 'authentication.p95'"
        )
    unknown = sorted(set(entry) - _KNOWN_KEYS)
    if unknown:
        raise BudgetError(
            f"budget {bid!r} has unknown key {unknown[0]!r}; "
            f"use only {', '.join(sorted(_KNOWN_KEYS))}"
        )
    kind = entry.get("kind")
    if kind not in KINDS:
        raise BudgetError(f"budget {bid!r} kind is {kind!r}; use one of {', '.join(KINDS)}")
    for key in ("requirement", "description"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise BudgetError(f"budget {bid!r} has no {key}; give it a {key} string")
    bmax = _number(entry, "max", bid)
    bmin = _number(entry, "min", bid)
    if bmax is None and bmin is None:
        raise BudgetError(f"budget {bid!r} has no bound; give it max = ... or min = ...")
    _check_bound_units(bid, kind, bmax, bmin)

    percentile = _number(entry, "percentile", bid)
    if kind in ("latency", "microbenchmark"):
        if percentile is None:
            raise BudgetError(f"budget {bid!r} has no percentile; give percentile = 95 (say)")
        if not 0 < percentile < 100:
            raise BudgetError(
                f"budget {bid!r} percentile is {percentile}; give a number between 0 and 100 "
                "(exclusive), like 95 or 99.9"
            )
    endpoints = _strings(entry, "endpoints", bid)
    if kind == "latency" and not endpoints:
        raise BudgetError(
            f'budget {bid!r} lists no endpoints; give endpoints = ["GET /api/v1/auth/me"]'
        )
    operations = _strings(entry, "operations", bid)
    benchmarks = _strings(entry, "benchmarks", bid)
    if kind == "microbenchmark" and not benchmarks:
        raise BudgetError(f'budget {bid!r} lists no benchmarks; give benchmarks = ["test_l1_hit"]')
    shapes = _strings(entry, "shapes", bid) if "shapes" in entry else None
    prd = entry.get("prd", True)
    if not isinstance(prd, bool):
        raise BudgetError(
            f"budget {bid!r} prd is {prd!r}; give false for a budget of the suite's own "
            "(outside the PRD's rows), or leave it out"
        )
    return Budget(
        id=bid,
        requirement=entry["requirement"],
        description=entry["description"],
        kind=kind,
        max=bmax,
        min=bmin,
        percentile=percentile,
        endpoints=endpoints,
        operations=operations,
        shapes=shapes,
        benchmarks=benchmarks,
        prd=prd,
    )


def _check_bound_units(bid: str, kind: str, bmax: float | None, bmin: float | None) -> None:
    if kind in ("latency", "microbenchmark"):
        if bmax is None:
            raise BudgetError(f"budget {bid!r} has no max; give max = <milliseconds>")
        if bmax <= 0:
            raise BudgetError(
                f"budget {bid!r} max is {bmax:g}; give a positive number of milliseconds"
            )
    elif kind in ("hit_rate", "error_rate"):
        for name, value in (("max", bmax), ("min", bmin)):
            if value is not None and not 0 <= value <= 1:
                raise BudgetError(
                    f"budget {bid!r} {name} is {value:g}; give a fraction between 0 and 1 "
                    "(0.95 for 95 %)"
                )
        if kind == "hit_rate" and bmin is None:
            raise BudgetError(f"budget {bid!r} has no min; give min = 0.95 (a fraction)")
        if kind == "error_rate" and bmax is None:
            raise BudgetError(f"budget {bid!r} has no max; give max = 0.001 (a fraction)")
    elif kind == "users" and (bmin is None or bmin <= 0):
        raise BudgetError(f"budget {bid!r} min is {bmin!r}; give a positive number of users")


def _number(entry: dict[str, Any], key: str, bid: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BudgetError(f"budget {bid!r} {key} is {value!r}; give a finite number")
    return float(value)


def _strings(entry: dict[str, Any], key: str, bid: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise BudgetError(f"budget {bid!r} {key} is {value!r}; give a list of strings")
    return tuple(value)

"""The service's own budgets: read from the PRD budgets file and judged on its histograms.

Budgets are read from ``VELRO_BUDGETS_FILE``, else the repository's ``fixtures/budgets.toml``
(none when absent). Only the latency and hit-rate budgets are the service's to judge; they
are judged as point estimates on the server-side histograms of the tracker
(``velro.tracker``): the gate's verdicts, with confidence intervals, come from the load run.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hdrh.histogram import HdrHistogram

from velro.errors import ServiceConfigError

__all__ = ["BudgetJudge", "RouteTimes", "ServerBudget", "default_budgets_file", "load_budgets"]

_PARAM = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True, slots=True)
class ServerBudget:
    """One PRD budget the service can judge itself: latency (per endpoints) or hit rate."""

    id: str
    requirement: str
    kind: str
    endpoints: tuple[str, ...] = ()
    percentile: float | None = None
    max: float | None = None
    min: float | None = None


class RouteTimes(Protocol):
    """One route's figures as the tracker keeps them: its count and its HDR histogram (µs)."""

    @property
    def count(self) -> int: ...

    @property
    def hist(self) -> Any: ...


class BudgetJudge:
    """Judges budgets on the routes' histograms, reusing a figure while its counts stand."""

    def __init__(self, budgets: Iterable[ServerBudget]) -> None:
        self.budgets = tuple(budgets)
        self._memo: dict[str, tuple[tuple[int, ...], float | None]] = {}

    def judge_all(
        self, routes: Mapping[str, RouteTimes], cache: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        return [self.judge(b, routes, cache) for b in self.budgets]

    def judge(
        self, b: ServerBudget, routes: Mapping[str, RouteTimes], cache: Mapping[str, Any]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": b.id,
            "requirement": b.requirement,
            "kind": b.kind,
            "percentile": b.percentile,
            "max_ms": b.max if b.kind == "latency" else None,
            "measured_ms": None,
            "samples": 0,
            "holds": None,
        }
        if b.kind == "latency":
            measured, samples = self._latency(b, routes)
            out["measured_ms"], out["samples"] = measured, samples
            if measured is not None and b.max is not None:
                out["holds"] = measured < b.max
        elif b.kind == "hit_rate":
            overall = cache.get("overall", {})
            rate = overall.get("hit_rate") if isinstance(overall, Mapping) else None
            out |= {"min": b.min, "measured": rate}
            out["samples"] = overall.get("lookups", 0) if isinstance(overall, Mapping) else 0
            if rate is not None and b.min is not None:
                out["holds"] = rate >= b.min
        return out

    def _latency(
        self, b: ServerBudget, routes: Mapping[str, RouteTimes]
    ) -> tuple[float | None, int]:
        wanted = {_template(e) for e in b.endpoints}
        matched = [r for name, r in routes.items() if _template(name) in wanted]
        samples = sum(r.count for r in matched)
        if not samples or b.percentile is None:
            return None, samples
        counts = tuple(r.count for r in matched)
        memo = self._memo.get(b.id)
        if memo is not None and memo[0] == counts:
            return memo[1], samples
        if len(matched) == 1:
            merged = matched[0].hist
        else:
            first = matched[0].hist  # every route's histogram has the same range and digits
            merged = HdrHistogram(
                first.lowest_trackable_value,
                first.highest_trackable_value,
                first.significant_figures,
            )
            for r in matched:
                merged.add(r.hist)
        measured: float = merged.get_value_at_percentile(b.percentile) / 1000.0
        self._memo[b.id] = (counts, measured)
        return measured, samples


def _template(endpoint: str) -> str:
    """``GET /projects/{project_id}`` and ``GET /projects/{id}`` name one endpoint."""
    return _PARAM.sub("{}", endpoint.strip())


# -- the budgets file ----------------------------------------------------------------------


def default_budgets_file() -> Path | None:
    """``VELRO_BUDGETS_FILE``, else the repository's ``fixtures/budgets.toml`` if present."""
    given = os.environ.get("VELRO_BUDGETS_FILE", "").strip()
    if given:
        path = Path(given)
        if not path.is_file():
            raise ServiceConfigError(
                f"VELRO_BUDGETS_FILE is {given!r}, which is not a file; give the path of a "
                "budgets.toml (docs/run-format.md) or unset it"
            )
        return path
    # src/velro/budgets.py -> the repository root, in a source checkout
    path = Path(__file__).resolve().parents[2] / "fixtures" / "budgets.toml"
    return path if path.is_file() else None


def load_budgets(path: Path | None = None) -> list[ServerBudget]:
    """The latency and hit-rate budgets of a budgets file (the others need the load run)."""
    path = path or default_budgets_file()
    if path is None:
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ServiceConfigError(
            f"budgets file {path} cannot be read: {exc}; fix or remove it"
        ) from exc
    entries = data.get("budget", [])
    if not isinstance(entries, list):
        raise ServiceConfigError(
            f"budgets file {path}: 'budget' is not an array of tables; write [[budget]]"
        )
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or e.get("kind") not in ("latency", "hit_rate"):
            continue
        where = f"budgets file {path}, budget {e.get('id', f'#{i + 1}')!r}"
        try:
            out.append(
                ServerBudget(
                    id=str(e["id"]),
                    requirement=str(e.get("requirement", "")),
                    kind=str(e["kind"]),
                    endpoints=tuple(str(x) for x in e.get("endpoints", ())),
                    percentile=_number(e.get("percentile")),
                    max=_number(e.get("max")),
                    min=_number(e.get("min")),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ServiceConfigError(
                f"{where} is malformed ({exc!r}); see docs/run-format.md"
            ) from exc
        b = out[-1]
        if b.kind == "latency" and (not b.endpoints or b.percentile is None or b.max is None):
            raise ServiceConfigError(
                f"{where}: a latency budget needs endpoints, percentile and max; "
                "see docs/run-format.md"
            )
    return out


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r} is not a number")
    return float(value)

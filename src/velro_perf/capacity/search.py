"""Which level to hold next: a geometric climb, then a bisection, from the steps' outcomes.

Climb: start, start x factor, ... until a step does not pass (a budget failed, the error
budget failed, the generator was invalid, or a budget stayed inconclusive after its step was
lengthened: never counted as a pass), or the highest level asked for passed. Then bisect (the
geometric mean, since loads scale by ratios) between the highest level that passed and the
lowest that did not, until the two are within `ratio` of each other. When the first level
does not pass, go down by the factor squared until one does, then bisect up: a start far over
the capacity (the reference's 1,000 users against a backend that holds a handful) then costs
half the steps that a descent by the factor would. Time is the runner's concern: it stops
asking when the next step would not fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Outcome", "Search"]


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict) every limiting budget passed, the run was valid
    FAIL = "fail"  # a limiting budget failed conclusively
    INCONCLUSIVE = "inconclusive"  # still straddling a bound after the step was lengthened
    INVALID = "invalid"  # the generator (or the run) could not be trusted at this level

    @property
    def passed(self) -> bool:
        return self is Outcome.PASS


@dataclass
class Search:
    start: float
    factor: float = 2.0
    ratio: float = 0.10
    max_level: float = math.inf
    min_level: float = 1.0
    whole: bool = True  # levels are whole numbers (users); rates need not be
    passed: float | None = None
    failed: float | None = None
    stopped_because: str | None = None
    tried: list[tuple[float, Outcome]] = field(default_factory=list)

    def _level(self, value: float) -> float:
        if self.whole:
            return float(max(1, round(value)))
        return float(f"{value:.3g}")

    def record(self, level: float, outcome: Outcome) -> None:
        self.tried.append((level, outcome))
        if outcome.passed:
            self.passed = level if self.passed is None else max(self.passed, level)
        else:
            self.failed = level if self.failed is None else min(self.failed, level)

    @property
    def phase(self) -> str:
        if self.failed is None:
            return "climb"
        if self.passed is None:
            return "descend"
        return "bisect"

    def next_level(self) -> float | None:
        """The level to hold next; None when the search is over (see stopped_because)."""
        if self.stopped_because is not None:
            return None
        if not self.tried:
            return self._level(min(self.start, self.max_level))
        if self.failed is None:
            assert self.passed is not None
            if self.passed >= self.max_level:
                return self._stop(
                    f"every budget held at the highest level asked for ({self.passed:g}, "
                    "--max-level)"
                )
            return self._level(min(self.passed * self.factor, self.max_level))
        if self.passed is None:
            lower = self._level(self.failed / self.factor**2)
            if lower < self.min_level or lower >= self.failed:
                return self._stop(f"no level passed: the lowest tried, {self.failed:g}, did not")
            return lower
        if self.failed <= self.passed * (1.0 + self.ratio):
            return self._stop(
                f"passed and failed levels within {self.ratio:.0%} of each other "
                f"({self.passed:g} and {self.failed:g})"
            )
        middle = self._level(math.sqrt(self.passed * self.failed))
        if not self.passed < middle < self.failed:
            return self._stop(f"no level between {self.passed:g} and {self.failed:g} to try")
        return middle

    def _stop(self, reason: str) -> float | None:
        self.stopped_because = reason
        return None

    def stop(self, reason: str) -> None:
        if self.stopped_because is None:
            self.stopped_because = reason

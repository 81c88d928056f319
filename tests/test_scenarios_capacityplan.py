"""The capacity search's side of the locustfile: the plan file the shape reads, and the open
model's schedule going on at another rate."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from velro_perf.scenarios.capacityplan import Level, PlanFile, parse_level
from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.openmodel import OpenModel


def test_the_plan_is_reread_when_it_changes_and_kept_when_it_breaks(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    PlanFile.write(path, Level(100, 20.0))
    plan = PlanFile(path)
    assert plan.current() == Level(100, 20.0)
    PlanFile.write(path, Level(200, 20.0, stop=True))
    os.utime(path, ns=(1, 10**18))  # a new modification time whatever the clock's grain
    assert plan.current() == Level(200, 20.0, stop=True)
    path.write_text("{not json", encoding="utf-8")
    os.utime(path, ns=(1, 2 * 10**18))
    assert plan.current() == Level(200, 20.0, stop=True)  # the last good level


@pytest.mark.parametrize(
    "raw",
    [
        {"users": -1, "spawn_rate": 1},
        {"users": 1, "spawn_rate": 0},
        {"users": 1, "spawn_rate": 1, "open_rate": 0},
    ],
)
def test_a_malformed_level_is_refused(raw: dict[str, object]) -> None:
    with pytest.raises(ScenarioConfigError):
        parse_level(raw, "plan.json")


def test_the_open_model_goes_on_at_a_new_rate_from_its_next_slot() -> None:
    model = OpenModel()
    model.start(10.0, now=1000.0)
    assert [model.claim() for _ in range(3)] == [1000.0, 1000.1, 1000.2]
    # the users' claims reach 1000.2; the new rate starts now all the same
    model.retarget(100.0, now=1000.05)
    assert [model.claim() for _ in range(3)] == pytest.approx([1000.05, 1000.06, 1000.07])
    assert model.scheduled == 6  # the counters go on
    model.retarget(50.0, now=2000.0)  # behind: the missed slots are not sent in a burst
    assert model.claim() == pytest.approx(2000.0)
    assert model.claim() == pytest.approx(2000.02)

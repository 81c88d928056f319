"""Shapes are data: the project's shapes file is valid, and a bad one fails naming the value."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.shapes import load_shapes, parse_shapes

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ROOT / "fixtures" / "shapes.toml"

GOOD: dict[str, Any] = {
    "shapes": {
        "tiny": {
            "warmup_s": 2,
            "wait_s": [0.5, 1.0],
            "seed_users": 4,
            "seed_teams": 1,
            "seed_projects": 8,
            "stages": [
                {"duration_s": 5, "users": 3, "spawn_rate": 1},
                {"duration_s": 5, "users": 6, "spawn_rate": 2.5},
            ],
        }
    }
}


def shape_with(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    data["shapes"]["tiny"].update(changes)
    return data


def test_the_project_shapes_are_valid_and_each_stops_by_itself() -> None:
    shapes = load_shapes(SHAPES)
    assert {"smoke", "baseline", "ramp-10k", "spike", "soak"} <= set(shapes)
    for shape in shapes.values():
        assert shape.target_at(shape.duration_s + 0.001) is None
        assert shape.warmup_s < shape.duration_s


def test_smoke_fits_ci_on_a_shared_two_core_machine() -> None:
    smoke = load_shapes(SHAPES)["smoke"]
    assert smoke.duration_s < 60
    # what is judged (after warm-up) must be long enough to hold ~3,700 requests at its rate
    assert smoke.duration_s - smoke.warmup_s >= 30
    assert smoke.peak_users <= 100


def test_ramp_10k_reaches_ten_thousand_users_with_long_waits() -> None:
    ramp = load_shapes(SHAPES)["ramp-10k"]
    assert ramp.peak_users == 10_000
    assert ramp.wait_s == (5.0, 15.0)


def test_stages_run_one_after_the_other() -> None:
    tiny = parse_shapes(GOOD)["tiny"]
    assert tiny.target_at(0) == (3, 1.0)
    assert tiny.target_at(4.99) == (3, 1.0)
    assert tiny.target_at(5.0) == (6, 2.5)
    assert tiny.target_at(10.0) is None
    assert tiny.duration_s == 10


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"warmup_s": -1}, "shape 'tiny', warmup_s is -1; give a number 0 or more"),
        ({"warmup_s": 10}, "warmup_s is 10 but the stages last only 10 s"),
        ({"wait_s": [3, 1]}, "wait_s is [3, 1]; the minimum must not exceed the maximum"),
        ({"wait_s": 2}, "wait_s is 2; give [min, max] seconds"),
        ({"seed_users": 0}, "seed_users is 0; give a number above 0"),
        ({"seed_teams": 1.5}, "seed_teams is 1.5; give a whole number"),
        ({"stages": []}, "stages is []; give at least one stage"),
        (
            {"stages": [{"duration_s": 5, "users": "ten", "spawn_rate": 1}]},
            "stages[0].users is 'ten'",
        ),
        ({"stages": [{"duration_s": 0, "users": 1, "spawn_rate": 1}]}, "stages[0].duration_s is 0"),
        ({"stages": [{"duration_s": 5, "users": 1}]}, "stages[0] lacks ['spawn_rate']"),
        (
            {"stages": [{"duration_s": 5, "users": 1, "spawn_rate": 1, "rps": 3}]},
            "unknown key(s) ['rps']",
        ),
        ({"stages": [{"duration_s": 5, "users": 0, "spawn_rate": 1}]}, "every stage has 0 users"),
        ({"wait": [1, 2]}, "shape 'tiny' has unknown key(s) ['wait']"),
    ],
)
def test_a_bad_value_is_named_in_the_error(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioConfigError) as raised:
        parse_shapes(shape_with(**changes), "shapes.toml")
    assert message in str(raised.value)
    assert "shapes.toml" in str(raised.value)


def test_a_missing_key_is_named() -> None:
    data = copy.deepcopy(GOOD)
    del data["shapes"]["tiny"]["seed_projects"]
    with pytest.raises(ScenarioConfigError, match=r"lacks \['seed_projects'\]"):
        parse_shapes(data)


def test_a_file_without_shapes_is_refused() -> None:
    with pytest.raises(ScenarioConfigError, match=r"no \[shapes\.<name>\] tables"):
        parse_shapes({"shape": {}})


def test_a_missing_or_broken_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ScenarioConfigError, match="does not exist"):
        load_shapes(tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[shapes.x\n", encoding="utf-8")
    with pytest.raises(ScenarioConfigError, match=r"broken\.toml.*not valid TOML"):
        load_shapes(broken)

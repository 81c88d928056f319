"""The workload file sets the user classes' weights and the authorization mix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.workload import CATEGORIES, load_workload, parse_workload

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["workload.toml", "workload-smoke.toml"])
def test_the_project_workloads_cover_every_kind_of_traffic(name: str) -> None:
    workload = load_workload(ROOT / "fixtures" / name)
    assert set(workload.users) == set(CATEGORIES)
    assert all(mix.enabled for mix in workload.users.values())
    assert workload.users["abuse"].fixed_count == 1
    assert workload.max_wrong_passwords > 10  # the contract's default per-account limit


def test_smoke_asks_half_the_sign_ins_of_the_default_mix_and_the_same_of_the_rest() -> None:
    default = load_workload(ROOT / "fixtures" / "workload.toml")
    smoke = load_workload(ROOT / "fixtures" / "workload-smoke.toml")
    for kind in CATEGORIES:
        halved = kind in ("login", "registration")
        want = default.users[kind].weight // 2 if halved else default.users[kind].weight
        assert smoke.users[kind].weight == want, kind
    assert (smoke.authz_tasks, smoke.relations) == (default.authz_tasks, default.relations)


def test_omitted_kinds_are_off_and_omitted_tables_have_defaults() -> None:
    workload = parse_workload({"users": {"login": {"weight": 3}}})
    assert workload.users["login"].weight == 3
    assert not workload.users["abuse"].enabled
    assert workload.relations == {"own": 1, "shared": 1, "team": 1, "denied": 1}
    assert workload.max_wrong_passwords == 30


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "has no [users] table"),
        ({"users": {"logins": {"weight": 1}}}, "unknown kind(s) ['logins']"),
        ({"users": {"login": {"weight": -2}}}, "users.login.weight is -2"),
        ({"users": {"login": {"weight": True}}}, "users.login.weight is True"),
        ({"users": {"login": {"share": 2}}}, "users.login is {'share': 2}"),
        (
            {"users": {"login": {"weight": 0}, "abuse": {"fixed_count": 1}}},
            "every [users] weight is 0",
        ),
        (
            {"users": {"login": {"weight": 1}}, "authorization": {"relation": {"mine": 1}}},
            "unknown key(s) ['mine']",
        ),
        (
            {"users": {"login": {"weight": 1}}, "authorization": {"tasks": {"check": 0}}},
            "gives every weight 0",
        ),
        (
            {"users": {"login": {"weight": 1}}, "abuse": {"max_wrong_passwords": 0}},
            "max_wrong_passwords is 0",
        ),
        ({"users": {"login": {"weight": 1}}, "extra": {}}, "unknown table(s) ['extra']"),
    ],
)
def test_a_bad_value_is_named_in_the_error(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioConfigError) as raised:
        parse_workload(data, "workload.toml")
    assert message in str(raised.value)

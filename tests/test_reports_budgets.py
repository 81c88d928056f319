"""fixtures/budgets.toml is read once, validated whole, and every mistake names its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import latency_budget_toml
from velro_perf.reports.budgets import load_budgets
from velro_perf.reports.errors import BudgetError

PROJECT = Path(__file__).resolve().parents[1]

GOOD = latency_budget_toml(
    "authz.p95",
    "authorization",
    "GET /api/v1/authz/check",
    75.0,
    description="An access decision answers in time.",
)


@pytest.fixture
def budget_file(tmp_path: Path):
    def write(text: str) -> Path:
        path = tmp_path / "budgets.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


def test_the_project_budgets_file_holds_every_prd_budget() -> None:
    budgets = load_budgets(PROJECT / "fixtures" / "budgets.toml")
    ids = {b.id for b in budgets if b.prd}
    # beyond the PRD's rows, the suite's own (PRD: "budgets of the suite's own")
    assert {b.id for b in budgets if not b.prd} == {"refresh.p95"}
    assert budgets.by_id("refresh.p95").max == 100.0
    assert ids == {
        "authentication.p95",
        "authentication.p99",
        "authorization.p95",
        "authorization.p99",
        "login.p95",
        "registration.p95",
        "cache.hit_rate",
        "users.concurrent",
        "errors.unexpected",
        "tier.l1.p99",
        "tier.l2.p99",
        "tier.l3.p99",
    }
    assert budgets.by_id("authentication.p95").max == 50.0
    assert budgets.by_id("users.concurrent").shapes == ("ramp-10k",)
    assert budgets.by_id("tier.l3.p99").benchmarks == ("test_l3_hit_sqlite", "test_l3_hit_postgres")
    assert budgets.by_id("cache.hit_rate").min == 0.95


def test_a_budget_outside_the_prd_says_so_and_prd_must_be_a_boolean(budget_file) -> None:
    own = GOOD.replace('id = "authz.p95"', 'id = "authz.p95"\nprd = false')
    (budget,) = load_budgets(budget_file(own))
    assert budget.prd is False
    with pytest.raises(BudgetError, match=r"prd is 'no'; give false"):
        load_budgets(budget_file(GOOD.replace('id = "authz.p95"', 'id = "authz.p95"\nprd = "no"')))


def test_a_valid_file_loads_in_file_order(budget_file) -> None:
    budgets = load_budgets(budget_file(GOOD))
    assert [b.id for b in budgets] == ["authz.p95"]
    assert budgets.prd == "test"


def test_a_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(BudgetError, match=r"nope\.toml.*does not exist"):
        load_budgets(tmp_path / "nope.toml")


def test_bad_toml_says_so(budget_file) -> None:
    with pytest.raises(BudgetError, match="not valid TOML"):
        load_budgets(budget_file("[[budget]\nid = "))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('kind = "latency"', 'kind = "speed"'), r"'authz\.p95' kind is 'speed'; use one of"),
        (("max = 75.0", ""), r"'authz\.p95' has no bound; give it max"),
        (("max = 75.0", "max = -5"), r"'authz\.p95' max is -5; give a positive number of milli"),
        (("percentile = 95", "percentile = 100"), r"percentile is 100.0; give a number between"),
        (("percentile = 95", "percentile = 0"), r"percentile is 0.0; give a number between"),
        (("percentile = 95", ""), r"has no percentile"),
        (('endpoints = ["GET /api/v1/authz/check"]', ""), r"lists no endpoints"),
        (('id = "authz.p95"', 'id = "Authz P95"'), r"has id 'Authz P95'"),
        (("max = 75.0", "max = 75.0\nmaximum = 3"), r"unknown key 'maximum'"),
    ],
)
def test_each_mistake_names_the_budget_and_the_fix(budget_file, change, message) -> None:
    with pytest.raises(BudgetError, match=message):
        load_budgets(budget_file(GOOD.replace(*change)))


def test_a_duplicate_id_is_refused(budget_file) -> None:
    doubled = GOOD + GOOD.replace('prd = "test"', "")
    with pytest.raises(BudgetError, match=r"'authz\.p95' appears twice"):
        load_budgets(budget_file(doubled))


def test_a_rate_bound_must_be_a_fraction(budget_file) -> None:
    text = """
[[budget]]
id = "errors"
requirement = "errors"
description = "few errors"
kind = "error_rate"
max = 5
"""
    with pytest.raises(BudgetError, match=r"'errors' max is 5; give a fraction between 0 and 1"):
        load_budgets(budget_file(text))


def test_a_file_without_budgets_is_refused(budget_file) -> None:
    with pytest.raises(BudgetError, match=r"no \[\[budget\]\] tables"):
        load_budgets(budget_file('prd = "x"\n'))

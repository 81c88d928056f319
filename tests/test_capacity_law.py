"""`velro-perf capacity` against a target whose capacity is known in closed form: the
calibration target's slots law (velro_perf/calibration/laws.py), c slots each held H ms.

Closed model, N users thinking Z between requests: the response time stays H up to the knee
N* = c (H + Z) / H and is N H / c - Z past it, so a bound B on the median holds up to
N_B = c (B + Z) / H. Open model on the suite's fixed-rate schedule: the queue is D/D/c, none
below c / H and one that grows without bound past it, so the capacity is c / H. The search
must find each within BOUND; short steps keep the two searches under two minutes in all.

The open model's law has longer holds (20 slots of 100 ms, the same 200 requests/s): a slot is
held for its sleep plus the target loop's hand-over to the next waiter and the timer's
rounding, about 1.5 to 3.5 ms here, which with 20-ms holds moved the real saturation to
between 170 and 185 requests/s (170 passed at a median of 20.9 ms, 185 failed at 208 ms;
`capacity --open` by hand, 2026-12-07); with 100-ms holds it is 2 % or less of H, and the same
search found 185 passed (median 101.0 ms) and 202 failed (289 ms).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import BIN, shape_toml
from velro_perf.calibration import Law, Target, write_fixtures
from velro_perf.capacity.search import Outcome, Search
from velro_perf.shapes import AUTHENTICATION_ONLY

ROOT = Path(__file__).resolve().parents[1]
BOUND = 0.15  # the capacity found is within 15 % of the law's
LAW = Law("slots", slots=4, hold_ms=20.0)  # saturates at 200 requests/s
OPEN_LAW = Law("slots", slots=20, hold_ms=100.0)  # saturates at 200 requests/s too
OPEN_BOUND_MS = 150.0  # the open model's median budget: any level under c / H holds it
THINK_S = 0.18  # closed model: the knee at N* = 4 (0.02 + 0.18) / 0.02 = 40 users
BOUND_MS = 30.0  # the median's budget: N_B = 4 (0.03 + 0.18) / 0.02 = 42 users

SHAPES = "".join(
    shape_toml(
        name,
        workload="workload.toml",
        warmup_s=1,
        wait_s=(THINK_S, THINK_S),
        seed=(100, 1, 1),
        duration_s=4,
        users=users,
        spawn_rate=200,
    )
    for name, users in (("law", 24), ("law-open", 20))
)

BUDGETS = """
prd = "the slots law"

[[budget]]
id = "law.p50"
requirement = "the law's bound"
description = "The median answer of GET /auth/me within {bound:g} ms."
kind = "latency"
endpoints = ["GET /api/v1/auth/me"]
operations = ["me"]
percentile = 50
max = {bound}

[[budget]]
id = "errors.unexpected"
requirement = "unexpected errors"
description = "At most 1 % unexpected answers (a step holds too few requests for 0.1 %)."
kind = "error_rate"
max = 0.01
"""


def test_the_slots_laws_capacity_in_closed_form() -> None:
    assert LAW.max_rps == pytest.approx(200.0)
    assert LAW.closed_knee(THINK_S) == pytest.approx(40.0)
    assert LAW.closed_capacity(THINK_S, BOUND_MS) == pytest.approx(42.0)
    assert OPEN_LAW.max_rps == pytest.approx(200.0)


def test_the_search_climbs_then_bisects_to_the_ratio() -> None:
    search = Search(start=24, factor=2, ratio=0.10)
    seen = []
    while (level := search.next_level()) is not None:
        seen.append(level)
        search.record(level, Outcome.PASS if level <= 42 else Outcome.FAIL)
    assert seen[:2] == [24, 48]  # climbed until a step failed
    assert search.passed is not None
    assert search.failed is not None
    assert search.passed <= 42 < search.failed <= search.passed * 1.10
    assert "within 10%" in (search.stopped_because or "")


def test_an_inconclusive_step_is_never_a_pass() -> None:
    search = Search(start=10, factor=2, ratio=0.10)
    search.record(10, Outcome.PASS)
    search.record(20, Outcome.INCONCLUSIVE)
    assert search.passed == 10
    assert search.failed == 20
    assert search.next_level() == 14  # bisects under it


def test_a_first_level_that_fails_descends() -> None:
    search = Search(start=100, factor=2, ratio=0.10)
    search.record(100, Outcome.FAIL)
    assert search.next_level() == 25  # by the factor squared
    search.record(25, Outcome.PASS)
    assert search.next_level() == 50  # then bisects up


@pytest.fixture
def law_inputs(tmp_path: Path) -> Path:
    (tmp_path / "shapes.toml").write_text(SHAPES, encoding="utf-8")
    (tmp_path / "workload.toml").write_text(AUTHENTICATION_ONLY, encoding="utf-8")
    (tmp_path / "budgets.toml").write_text(BUDGETS.format(bound=BOUND_MS), encoding="utf-8")
    (tmp_path / "budgets-open.toml").write_text(
        BUDGETS.format(bound=OPEN_BOUND_MS), encoding="utf-8"
    )
    write_fixtures(tmp_path / "fixtures.json", 100)
    return tmp_path


def _capacity(
    work: Path, out: Path, url: str, *extra: str, budgets: str = "budgets.toml"
) -> dict[str, object]:
    done = subprocess.run(
        [str(BIN / "velro-perf"), "capacity", "--target", url,
         "--api", str(ROOT / "targets" / "contract.toml"),
         "--shapes", str(work / "shapes.toml"), "--budgets", str(work / budgets),
         "--fixtures", str(work / "fixtures.json"), "--processes", "1",
         "--ratio", "0.1", "--extensions", "1", "--max-time", "100",
         "--out", str(out), *extra],
        capture_output=True, text=True, timeout=150, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    (summary_path,) = out.glob("*/summary.json")
    summary: dict[str, object] = json.loads(summary_path.read_text())
    assert "capacity:" in done.stdout
    assert (summary_path.parent / "report.html").is_file()
    return summary


def _check_against_law(summary: dict[str, object], model: str, law: float, ceiling: float) -> None:
    capacity = summary["capacity"]
    assert isinstance(capacity, dict)
    assert capacity["model"] == model
    found = capacity["level_passed"]
    assert found is not None, capacity
    assert abs(found - law) <= BOUND * law, (model, found, law, capacity)
    assert capacity["level_failed"] is not None
    assert capacity["level_failed"] >= law * (1 - BOUND), (model, capacity)
    assert capacity["limited_by"] == "law.p50", capacity
    steps = summary["steps"]
    assert isinstance(steps, list)
    assert all(step["cpu"]["per_request_ms"]["generator"] is not None for step in steps)
    # the throughput at capacity never beats the law's ceiling c / H by more than noise
    assert capacity["throughput_rps"] <= ceiling * 1.05


@pytest.mark.slow
def test_capacity_finds_the_slots_laws_closed_capacity(law_inputs: Path) -> None:
    with Target(LAW, law_inputs / "target.log") as target:
        closed = _capacity(
            law_inputs, law_inputs / "closed", target.url, "--shape", "law", "--start", "24"
        )
    _check_against_law(closed, "closed", LAW.closed_capacity(THINK_S, BOUND_MS), LAW.max_rps)


@pytest.mark.slow
def test_capacity_finds_the_slots_laws_open_capacity(law_inputs: Path) -> None:
    with Target(OPEN_LAW, law_inputs / "target-open.log") as target:
        opened = _capacity(
            law_inputs,
            law_inputs / "open",
            target.url,
            "--shape",
            "law-open",
            "--open",
            "--start",
            "120",
            budgets="budgets-open.toml",
        )
    _check_against_law(opened, "open", OPEN_LAW.max_rps, OPEN_LAW.max_rps)

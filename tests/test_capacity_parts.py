"""The parts of `velro-perf capacity` that need no load: a window of a run judged by the gate's
code, a step's outcome from its budgets, the operational laws, the answer, and bad input."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import free_port
from velro_perf.capacity.laws import LawInputs, predict
from velro_perf.capacity.options import CapacityOptions
from velro_perf.capacity.runner import API_SEED_USERS, _api_seed
from velro_perf.capacity.search import Outcome
from velro_perf.capacity.steps import judge_step
from velro_perf.cli import main
from velro_perf.locust_proc import LocustOptions, locust_argv
from velro_perf.paths import budgets_file, shapes_file
from velro_perf.reports.budgets import load_budgets
from velro_perf.reports.synthetic import write_synthetic_run
from velro_perf.reports.window import judge_window
from velro_perf.scenarios.args import Options
from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.shapes import load_shapes

START = 1_764_000_000.0


@pytest.fixture
def two_levels(tmp_path: Path) -> Path:
    """A run whose first 120 s are fast and whose next 120 s are 30 times slower."""
    run = write_synthetic_run(
        tmp_path / "run", n=8000, duration_s=120.0, start=START, samples_format="csv"
    )
    samples = pd.read_csv(run / "samples.csv")
    slow = samples[samples["category"] != "setup"].copy()
    slow["ts"] += 120.0
    slow["latency_ms"] *= 30.0
    pd.concat([samples, slow]).to_csv(run / "samples.csv", index=False)
    return run


def _verdicts(summary: dict[str, object]) -> dict[str, str]:
    budgets = summary["budgets"]
    assert isinstance(budgets, list)
    return {b["id"]: str(b["verdict"]) for b in budgets}


def test_each_window_is_judged_on_its_own_samples(two_levels: Path) -> None:
    budgets = load_budgets(budgets_file())
    fast = judge_window(two_levels, budgets, START + 20, START + 120, shape_name="capacity")
    slow = judge_window(two_levels, budgets, START + 140, START + 240, shape_name="capacity")
    assert _verdicts(dict(fast))["authentication.p95"] == "pass"
    assert _verdicts(dict(slow))["authentication.p95"] == "fail"
    # a window holds only its own requests: the slow one none of the fast one's
    assert 0 < fast["requests"] < 8000
    assert slow["requests"] == pytest.approx(fast["requests"], rel=0.05)
    # budgets for other shapes are not judged on a step
    assert _verdicts(dict(fast))["users.concurrent"] == "not_applicable"

    outcome, limited, rows, invalid, _ = judge_step(slow, open_rate=None)
    assert outcome is Outcome.FAIL
    assert "authentication.p95" in limited
    assert not invalid
    assert all(not r["limiting"] for r in rows if r["kind"] == "hit_rate")
    assert judge_step(fast, open_rate=None)[0] in (Outcome.PASS, Outcome.INCONCLUSIVE)


def test_the_laws_bound_the_throughput_and_place_the_knee() -> None:
    # 100 users at 50 req/s with a 10-ms response: they think 1.99 s between requests
    prediction = predict(
        LawInputs(
            cores=2,
            users=100,
            throughput_rps=50.0,
            response_s=0.010,
            service_demand_s=0.002,
            machine_demand_s=0.004,
        )
    )
    assert prediction is not None
    assert prediction.think_s == pytest.approx(1.99)
    assert prediction.max_rps_shared == pytest.approx(500.0)  # c / D = 2 / 0.004
    assert prediction.max_rps_alone == pytest.approx(1000.0)
    assert prediction.knee_shared == pytest.approx(2 * 2.0 / 0.004)  # c (R0 + Z) / D
    assert prediction.knee_alone == pytest.approx(2 * 2.0 / 0.002)


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--require", "many"], "'many' is not a number"),
        (["--start", "5000", "--max-level", "100"], "--start 5000 is above --max-level 100"),
        (["--factor", "1"], "--factor 1"),
        (["--fixtures", "seed.json"], "--fixtures seed.json"),
    ],
)
def test_bad_input_is_exit_2_naming_the_value(
    argv: list[str], names: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["capacity", *argv]) == 2
    assert names in capsys.readouterr().err


def test_a_target_that_does_not_answer_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["capacity", "--target", url]) == 2
    err = capsys.readouterr().err
    assert url in err
    assert "start the service first" in err


def _budget(bid: str, kind: str, bound: dict[str, float], **figures: object) -> dict[str, object]:
    return {"id": bid, "kind": kind, "bound": bound, "percentile": None, "confidence": 0.95,
            "sentence": "", **figures}  # fmt: skip


def test_too_few_requests_to_bound_a_budget_do_not_limit_but_a_straddle_does() -> None:
    few = _budget(
        "errors.unexpected", "error_rate", {"max": 0.001},
        measured=0.0, ci_low=0.0, ci_high=0.0037, samples=1000, verdict="inconclusive",
    )  # fmt: skip
    straddle = _budget(
        "authentication.p95", "latency", {"max": 50.0},
        measured=48.0, ci_low=45.0, ci_high=53.0, samples=20000, verdict="inconclusive",
    )  # fmt: skip
    summary = {"budgets": [few], "invalid_reasons": [], "requests": 1000, "duration_s": 90.0}
    outcome, limited, rows, _, notes = judge_step(summary, open_rate=None)  # type: ignore[arg-type]
    assert outcome is Outcome.PASS
    assert rows[0]["judged"] == "too few samples"
    assert "too few requests (1000)" in notes[0]
    summary["budgets"] = [few, straddle]
    outcome, limited, *_ = judge_step(summary, open_rate=None)  # type: ignore[arg-type]
    assert outcome is Outcome.INCONCLUSIVE
    assert limited == ["authentication.p95"]


def test_a_budget_the_backend_cannot_be_judged_on_is_shown_as_not_applicable() -> None:
    absent = _budget(
        "authorization.p95", "latency", {"max": 75.0},
        measured=None, ci_low=None, ci_high=None, samples=0, verdict="not_applicable",
    )  # fmt: skip
    summary = {"budgets": [absent], "invalid_reasons": [], "requests": 1000, "duration_s": 90.0}
    outcome, limited, rows, *_ = judge_step(summary, open_rate=None)  # type: ignore[arg-type]
    assert outcome is Outcome.PASS
    assert limited == []
    assert (rows[0]["limiting"], rows[0]["judged"]) == (False, "not applicable")


def test_a_target_seeded_through_its_api_gets_a_seed_it_can_make_in_a_minute() -> None:
    """The capacity shape's 10,000 users would cost a target that hashes 7 passwords a second
    48 minutes of sign-ups and sign-ins; through an API the seed is API_SEED_USERS, teams and
    projects in the shape's proportions, shared by the simulated users."""
    shape = load_shapes(shapes_file())["capacity"]
    external = CapacityOptions(target="http://127.0.0.1:8000")
    seed = _api_seed(external, shape)
    assert seed == (
        API_SEED_USERS,
        round(shape.seed_teams * API_SEED_USERS / shape.seed_users),
        round(shape.seed_projects * API_SEED_USERS / shape.seed_users),
    )
    argv = locust_argv(
        LocustOptions(host="http://127.0.0.1:8000", shape="capacity", run_dir=Path("r"), seed=seed)
    )
    sizes = argv[argv.index("--velro-seed") + 1]
    assert Options.from_parsed(argparse.Namespace(velro_seed=sizes)).seed == (200, 20, 600)
    # the reference's seed goes straight into its database, and --fixtures is a seed of its own
    assert _api_seed(CapacityOptions(), shape) is None
    assert _api_seed(replace(external, fixtures=Path("f.json")), shape) is None


@pytest.mark.parametrize("text", ["200", "200,20", "a,b,c", "0,1,1", "200,-1,5"])
def test_a_bad_seed_option_names_the_value_and_the_form(text: str) -> None:
    with pytest.raises(ScenarioConfigError, match="USERS,TEAMS,PROJECTS"):
        Options.from_parsed(argparse.Namespace(velro_seed=text))

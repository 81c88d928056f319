"""The run in phases (reports/phases.py): ramps and holds found in the users the generator ran,
each with its figures, and the recovery after a burst; on a run directory written here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from velro_perf.reports.analysis import latency_bounds, summarize
from velro_perf.reports.budgets import load_budgets
from velro_perf.reports.loading import load_run
from velro_perf.reports.markdown import render_markdown
from velro_perf.reports.phases import phase_rows
from velro_perf.reports.runfiles import PhaseRow

ROOT = Path(__file__).resolve().parents[1]
START = 1_764_000_000.0
ME = "GET /api/v1/auth/me"


def _spike_run(run_dir: Path, slow_until_s: float) -> Path:
    """200 users (warm-up 10 s, then 20 s judged), a jump to 2,000 for 20 s, back to 200 for
    40 s; `/auth/me` answers in 2 ms, but 400 ms from the jump until `slow_until_s`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    users = [200] * 30 + list(range(400, 2001, 400)) + [2000] * 16 + [200] * 40
    seconds = np.arange(len(users), dtype=float)
    pd.DataFrame(
        {
            "Timestamp": (START + seconds).astype(np.int64),
            "User Count": users,
            "Type": "",
            "Name": "Aggregated",
            "Requests/s": 100.0,
            "Failures/s": 0.0,
        }
    ).to_csv(run_dir / "locust_stats_history.csv", index=False)
    ts = START + np.arange(0.0, len(users) - 1, 0.05)  # 20 requests a second
    slow = (ts >= START + 30) & (ts < START + slow_until_s)
    latency = np.where(slow, 400.0, 2.0)
    latency[np.searchsorted(ts, START + 40)] = 2500.0  # the longest wait, inside the burst
    samples = pd.DataFrame(
        {
            "ts": ts,
            "endpoint": ME,
            "category": "authentication",
            "latency_ms": latency,
            "status": 200,
            "expected": 1,
        }
    )
    refused = pd.DataFrame(
        {
            "ts": START + np.array([31.0, 32.0, 33.0]),
            "endpoint": "POST /api/v1/auth/login",
            "category": "setup",
            "latency_ms": 1.0,
            "status": 503,
            "expected": 0,
        }
    )
    pd.concat([samples, refused]).sort_values("ts").to_csv(run_dir / "samples.csv", index=False)
    (run_dir / "config.json").write_text(json.dumps({"shape": "spike"}), encoding="utf-8")
    meta = {"run_id": run_dir.name, "measured_from": START + 10, "complete": True}
    (run_dir / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return run_dir


def _phases(run_dir: Path) -> list[PhaseRow]:
    data = load_run(run_dir)
    return phase_rows(data, latency_bounds(load_budgets(ROOT / "fixtures/budgets.toml"), data))


def test_a_spike_run_is_cut_into_its_ramps_and_holds_with_their_figures(tmp_path: Path) -> None:
    phases = _phases(_spike_run(tmp_path, slow_until_s=50 + 12))
    assert [(p["name"], p["judged"]) for p in phases] == [
        ("hold 200", False),
        ("hold 200", True),
        ("ramp 200 to 2,000", True),
        ("hold 2,000", True),  # Locust stops users at once: a step, no ramp down
        ("hold 200", True),
    ]
    hold, burst = phases[1], phases[3]
    assert (hold["start_s"], hold["end_s"]) == (0.0, 19.0)
    assert hold["latency"]["authentication.p95"] == 2.0
    assert burst["latency"]["authentication.p95"] == 400.0
    assert burst["max_ms"] == 2500.0
    assert phases[2]["sign_ins_refused"] == 3  # setup sign-ins, never in `requests`
    assert all(p["unexpected"] == 0 for p in phases)


def test_recovery_is_counted_from_the_burst_end_in_five_second_windows(tmp_path: Path) -> None:
    # the last second at 2,000 users is 50 s; slow for 12 s more: the windows from 0, 5 and
    # 10 s after it fail, so the budgets held again from 15 s
    slow = _phases(_spike_run(tmp_path / "slow", slow_until_s=50 + 12))
    assert slow[-1]["recovery_s"] == 15.0
    quick = _phases(_spike_run(tmp_path / "quick", slow_until_s=50))
    assert quick[-1]["recovery_s"] == 0.0
    never = _phases(_spike_run(tmp_path / "never", slow_until_s=200))
    assert never[-1]["recovery_s"] is None
    assert all(p["recovery_s"] is None for p in slow[:-1])


def test_the_phases_are_in_the_summary_and_its_markdown(tmp_path: Path) -> None:
    run = _spike_run(tmp_path, slow_until_s=50 + 12)
    summary = summarize(run, load_budgets(ROOT / "fixtures/budgets.toml"))
    assert [p["name"] for p in summary["phases"]][-1] == "hold 200"
    text = render_markdown(summary)
    assert "| ramp 200 to 2,000 | 19 to 24 |" in text
    assert "hold 200, budgets held again 15 s after the burst" in text

"""The generator's stalls, without a load: the loop watch notes lateness over its bound, the
master notes late heartbeats, and the analysis leaves out exactly the requests in flight
across a stall of their own process and judges the run invalid past its bounds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import gevent
import numpy as np
import pandas as pd

from velro_perf.reports.analysis import summarize
from velro_perf.reports.budgets import load_budgets
from velro_perf.reports.loading import load_run
from velro_perf.reports.stalls import MAX_STALL_SHARE, stall_set
from velro_perf.reports.synthetic import write_synthetic_run
from velro_perf.scenarios.stalls import HeartbeatGaps, LoopWatch

ROOT = Path(__file__).resolve().parent.parent


def test_a_loop_blocked_past_the_bound_is_a_stall_with_its_start_and_length() -> None:
    watch = LoopWatch(interval_s=0.01, stall_s=0.1)
    watch.start()
    gevent.sleep(0.05)
    before = time.time()
    time.sleep(0.25)  # blocks the whole loop, as a stopped process would
    gevent.sleep(0.05)
    watch.stop()
    (stall,) = watch.take()
    assert 0.2 <= stall["length_s"] <= 0.3
    assert before - 0.02 <= stall["start"] <= before + 0.03
    assert watch.take() == []  # handed over once
    report = watch.report()
    assert report["lag_counts"]["0.1"] == 1
    assert report["max_lag_s"] >= 0.2


def test_a_heartbeat_late_by_more_than_the_bound_is_a_gap_and_a_first_one_is_not() -> None:
    beats = HeartbeatGaps(interval_s=1.0, stall_s=0.1)
    for worker, at in (("a", 100.0), ("a", 101.05), ("a", 104.0), ("b", 103.0)):
        beats.beat(worker, at)
    assert beats.gaps == [{"worker": "a", "start": 102.05, "length_s": 1.9500000000000028}]


def test_requests_in_flight_across_a_stall_of_their_own_process_are_the_ones_left_out() -> None:
    health = {
        "stall_interval_s": 0.0,
        "stall_s": 0.1,
        "stalls": [{"worker": "w1", "start": 10.0, "length_s": 2.0}],
        "heartbeat_gaps": [
            {"worker": "w1", "start": 11.5, "length_s": 1.5},  # merges with the loop's
            {"worker": "w2", "start": 20.0, "length_s": 1.0},  # the master stalled across it
        ],
    }
    health["stalls"].append({"worker": "master", "start": 19.5, "length_s": 2.0})
    stalls = stall_set(health)
    assert [(s.worker, s.start, s.length_s, s.source) for s in stalls.stalls] == [
        ("master", 19.5, 2.0, "loop"),
        ("w1", 10.0, 3.0, "both"),
    ]
    samples = pd.DataFrame(
        {
            "ts": [9.0, 9.0, 12.9, 13.1, 20.5, 11.0],
            "latency_ms": [900.0, 1100.0, 50.0, 5.0, 10.0, 5.0],
            "worker": ["w1", "w1", "w1", "w1", "w2", "w2"],
        }
    )
    assert stalls.in_flight(samples).tolist() == [False, True, True, False, False, False]
    assert stalls.shares(0.0, 100.0) == {"master": 0.02, "w1": 0.03}


def _with_stalls(run: Path, stalls: list[dict[str, object]]) -> None:
    (run / "generator_health.json").write_text(
        json.dumps({"stall_s": 0.1, "stall_interval_s": 0.0, "stalls": stalls}), encoding="utf-8"
    )


def test_a_run_with_a_short_stall_is_judged_without_its_requests(tmp_path: Path) -> None:
    run = write_synthetic_run(tmp_path / "run", n=20_000, samples_format="csv")
    data = load_run(run)
    t0 = data.measured_from + 30
    _with_stalls(run, [{"worker": "local", "start": t0, "length_s": 0.5}])
    summary = summarize(run, load_budgets(ROOT / "fixtures" / "budgets.toml"))
    stalls = summary["generator"]["stalls"]
    samples = pd.read_csv(run / "samples.csv")
    end = samples["ts"] + samples["latency_ms"] / 1000
    across = int(((samples["ts"] < t0 + 0.5) & (end > t0)).sum())
    assert across > 0
    assert stalls["excluded"] == across
    assert summary["requests"] == len(samples[samples["ts"] >= data.measured_from]) - across
    assert summary["verdict"] != "invalid", summary["invalid_reasons"]
    assert np.isclose(stalls["shares"]["local"], 0.5 / stalls["measured_s"])


def test_one_long_stall_or_too_many_short_ones_make_the_run_invalid(tmp_path: Path) -> None:
    budgets = load_budgets(ROOT / "fixtures" / "budgets.toml")
    run = write_synthetic_run(tmp_path / "long", n=5_000)
    t0 = load_run(run).measured_from + 20
    _with_stalls(run, [{"worker": "local", "start": t0, "length_s": 1.5}])
    reasons = " | ".join(summarize(run, budgets)["invalid_reasons"])
    assert "Locust process local stalled at " in reasons
    assert "(+20 s from the measured start) for 1.50 s" in reasons
    run = write_synthetic_run(tmp_path / "many", n=5_000)
    t0 = load_run(run).measured_from
    measured = 110.0  # the synthetic run: 120 s with 10 s of warm-up
    count = int(MAX_STALL_SHARE * measured / 0.2) + 2
    _with_stalls(
        run, [{"worker": "local", "start": t0 + 5 * k, "length_s": 0.2} for k in range(count)]
    )
    summary = summarize(run, budgets)
    assert summary["verdict"] == "invalid"
    assert f"Locust process local was stalled {count * 0.2 / measured:.1%}" in " ".join(
        summary["invalid_reasons"]
    )

"""The samples in Parquet, queried in place: the same figures as the CSV path, one percentile
rule (reports.stats' nearest rank), and a killed writer's parts still readable."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from velro_perf.reports.analysis import summarize
from velro_perf.reports.budgets import load_budgets
from velro_perf.reports.runfiles import Summary
from velro_perf.reports.samplefiles import SCHEMA, sample_files
from velro_perf.reports.samples import SampleStore, disc_fraction, rank_fraction
from velro_perf.reports.stats import nearest_rank, percentile_ci, percentile_rank_bounds
from velro_perf.reports.synthetic import write_synthetic_run

PROJECT = Path(__file__).resolve().parents[1]
BUDGETS = load_budgets(PROJECT / "fixtures" / "budgets.toml")


def _disc(values: list[float], fractions: list[float]) -> list[float]:
    con = duckdb.connect()
    row = con.execute(
        "SELECT quantile_disc(v, ?::DOUBLE[]) FROM (SELECT unnest(?) AS v)", [fractions, values]
    ).fetchone()
    assert row is not None
    return [float(v) for v in row[0]]


@pytest.mark.parametrize("n", [1, 2, 7, 10, 20, 100, 101, 1000, 1234])
def test_duckdbs_discrete_quantile_is_the_budgets_nearest_rank(n: int) -> None:
    values = [float(v) for v in range(1, n + 1)]
    qs = [q / 10 for q in range(1, 1000)]  # 0.1 .. 99.9 in steps of 0.1, the float-unfriendly
    got = _disc(values, [disc_fraction(q) for q in qs])
    assert got == [values[nearest_rank(n, q) - 1] for q in qs]
    # as the store writes them: DOUBLE literals in the SQL text
    store = SampleStore(Path("/nonexistent"))
    store.con.execute("CREATE TABLE t AS SELECT unnest(?) AS latency_ms", [values])
    for q in (0.9, 50.0, 95.0, 99.9):
        fraction = f"CAST({disc_fraction(q)!r} AS DOUBLE)"
        sql = f"SELECT quantile_disc(latency_ms, {fraction}) FROM t"  # noqa: S608
        rows = store.con.execute(sql).fetchall()
        assert rows == [(values[nearest_rank(n, q) - 1],)]


def test_the_fraction_holds_the_rule_to_a_hundred_million_samples() -> None:
    # DuckDB's rank is ceil(f·n) (the exact cases above); its arithmetic, at sizes too large
    # to hand it a list, against the rule in exact rational arithmetic
    rng = np.random.default_rng(5)
    sizes = [*range(1, 3000), *rng.integers(3000, 100_000_000, 3000).tolist()]
    for q in (50.0, 90.0, 95.0, 99.0, 99.9, 0.9, 12.5, 33.3):
        f = disc_fraction(q)
        for n in sizes:
            exact = max(1, min(n, math.ceil(Fraction(str(q)) * n / 100)))
            assert math.ceil(f * n) == exact, (q, n)
            if n < 1_000_000:  # reports.stats' tolerance (1e-9) holds to about ten million
                assert nearest_rank(n, q) == exact, (q, n)


def test_the_rank_fraction_picks_exactly_the_rank() -> None:
    for n in (1, 3, 10, 999, 12_345):
        values = [float(v) for v in range(1, n + 1)]
        ranks = sorted({1, n, (n + 1) // 2, max(1, n - 1), *percentile_rank_bounds(n, 95.0)})
        ranks = [r for r in ranks if 1 <= r <= n]
        assert _disc(values, [rank_fraction(r, n) for r in ranks]) == [float(r) for r in ranks]


def test_the_values_1_to_100_have_p95_95() -> None:
    assert _disc([float(v) for v in range(1, 101)], [0.95]) == [95.0]


def _csv_path_budgets(run: Path) -> dict[str, tuple[float | None, float | None, float | None]]:
    """The budgets' latency figures as the code before Parquet computed them: samples.csv
    into pandas, the judged rows, sorted per endpoint, reports.stats.percentile_ci."""
    samples = pd.read_csv(run / "samples.csv")
    meta = pd.read_json(run / "meta.json", typ="series")
    judged = samples[(samples["ts"] >= meta["measured_from"]) & (samples["category"] != "setup")]
    out = {}
    for b in BUDGETS.of_kind("latency"):
        assert b.percentile is not None
        lat = np.sort(judged.loc[judged["endpoint"].isin(b.endpoints), "latency_ms"].to_numpy())
        iv = percentile_ci(lat, b.percentile)
        out[b.id] = (iv.value, iv.low, iv.high)
    return out


def test_parquet_and_csv_give_the_same_summary_as_the_csv_code(tmp_path: Path) -> None:
    kwargs = {"n": 60_000, "duration_s": 300.0, "warmup_s": 20.0, "seed": 7}
    parquet = write_synthetic_run(tmp_path / "parquet", **kwargs)
    legacy = write_synthetic_run(tmp_path / "csv", samples_format="csv", **kwargs)
    new, old = summarize(parquet, BUDGETS), summarize(legacy, BUDGETS)
    reference = _csv_path_budgets(legacy)
    by_id = {b["id"]: b for b in new["budgets"]}
    for budget_id, figures in reference.items():
        b = by_id[budget_id]
        if b["verdict"] != "not_applicable":
            assert (b["measured"], b["ci_low"], b["ci_high"]) == figures, budget_id

    def figures(summary: Summary) -> list[dict[str, object]]:
        # the note and the sentence name the file the figures came from
        return [
            {k: v for k, v in b.items() if k not in ("note", "sentence")}
            for b in summary["budgets"]
        ]

    assert figures(new) == figures(old)
    assert new["endpoints"] == old["endpoints"]
    assert new["phases"] == old["phases"]
    assert (
        new["requests"]
        == old["requests"]
        == 60_000 - sum(1 for _ in range(0)) - _warmup_rows(legacy)
    )


def _warmup_rows(run: Path) -> int:
    samples = pd.read_csv(run / "samples.csv")
    meta = pd.read_json(run / "meta.json", typ="series")
    setup = samples["category"] == "setup"
    return int(((samples["ts"] < meta["measured_from"]) & ~setup).sum())


WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from velro_perf.scenarios.recorder import SampleRecorder
    recorder = SampleRecorder()
    recorder.configure(sys.argv[1], writes=True)
    i = 0
    while True:
        for _ in range(500):
            recorder.record(1764000000.0 + i / 1000, "GET /api/v1/auth/me", "authentication",
                            1.0 + (i % 97) / 10, 200, True, None)
            i += 1
        recorder.flush("local")
        print(i, flush=True)
    """
)


def test_a_writer_killed_mid_run_leaves_every_flushed_sample_readable(tmp_path: Path) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    assert writer.stdout is not None
    flushed = 0
    for line in writer.stdout:
        flushed = int(line)
        if flushed >= 200 * 500:  # past a compaction (64 parts), into the next parts
            break
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    writer.stdout.close()
    store = SampleStore(tmp_path)
    assert store.files == sample_files(tmp_path)
    count = store.totals("samples").n
    # every flush acknowledged is there; the writer may have flushed more before the kill
    assert count >= flushed
    assert count % 500 == 0
    distinct = store.con.execute("SELECT count(DISTINCT ts) FROM samples").fetchone()
    assert distinct == (count,)  # no part read twice (a segment and its parts)


def test_a_window_and_stalls_narrow_what_is_judged(tmp_path: Path) -> None:
    run = write_synthetic_run(tmp_path / "run", n=20_000, duration_s=100.0, warmup_s=10.0)
    meta = pd.read_json(run / "meta.json", typ="series")
    start = float(meta["measured_from"])
    whole = SampleStore(run)
    whole.judge_from(start)
    n = whole.totals().n
    windowed = SampleStore(run, window=(start + 10, start + 20))
    windowed.judge_from(start)
    inside = windowed.totals()
    assert 0 < inside.n < n
    assert inside.ts_min is not None
    assert inside.ts_max is not None
    assert start + 10 <= inside.ts_min
    assert inside.ts_max < start + 20
    # a stall of the `local` process from +30 s to +31 s: every request in flight across it
    stalled = SampleStore(run)
    stalled.judge_from(start, [("local", start + 30, start + 31)])
    left = stalled.totals().n
    across = stalled.con.execute(
        "SELECT count(*), min(ts + latency_ms / 1000.0), max(ts) FROM across_stalls"
    ).fetchone()
    assert across is not None
    assert left + across[0] == n
    assert across[0] > 0
    assert across[1] > start + 30
    assert across[2] < start + 31


def test_export_writes_the_samples_as_the_csv_of_before(tmp_path: Path) -> None:
    run = write_synthetic_run(tmp_path / "run", n=3_000)
    argv = [str(Path(sys.executable).with_name("velro-perf")), "export", str(run), "--csv"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    exported = pd.read_csv(run / "samples.csv")
    assert list(exported.columns) == list(SCHEMA.names)
    assert len(exported) == 3_000 + 20  # the requests and the setup rows
    parquet = SampleStore(run)
    parquet.judge_from(0.0)
    figures = parquet.endpoint_stats((50.0, 99.0))
    # the CSV read back (a run of before) gives the same figures
    (run / "samples").rename(tmp_path / "parquet")
    legacy = SampleStore(run)
    assert legacy.legacy
    legacy.judge_from(0.0)
    assert sorted(legacy.endpoint_stats((50.0, 99.0)), key=str) == sorted(figures, key=str)
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 2
    assert "no samples/ folder" in refused.stderr

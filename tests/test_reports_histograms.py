"""Histogram mode: workers' HdrHistograms, merged, give percentiles within 0.1 % of the exact
ones of the same requests, and intervals widened by the quantisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hdrh.histogram import HdrHistogram

from velro_perf.reports.histograms import RESOLUTION, buckets, encode_many, new_histogram, to_units
from velro_perf.reports.samples import SampleStore
from velro_perf.runplan import MASTER_CEILING_SPS, RunOptions, samples_mode
from velro_perf.scenarios.recorder import SampleRecorder
from velro_perf.shapes import ShapeInfo

ENDPOINTS = ("GET /api/v1/auth/me", "GET /api/v1/authz/check", "POST /api/v1/auth/login")
TIMING = 'app;dur=1.5, db;dur=0.5, cache;desc="L1"'


def _record(tmp_path: Path) -> tuple[SampleStore, SampleStore]:
    """The same requests from three workers, recorded exactly and as histograms."""
    exact, merged = SampleRecorder(), SampleRecorder()
    exact.configure(str(tmp_path / "exact"), writes=True)
    merged.configure(str(tmp_path / "histogram"), writes=True, mode="histogram")
    rng = np.random.default_rng(3)
    for worker in range(3):
        shipper = SampleRecorder()
        shipper.configure(str(tmp_path / "unused"), writes=False, mode="histogram")
        for flush in range(4):
            n = 5_000
            ts = 1_764_000_000.0 + flush * 3 + rng.uniform(0, 3, n)
            which = rng.integers(0, len(ENDPOINTS), n)
            # 0.2 ms to seconds: every bucket width HdrHistogram has, and sub-ms rounding
            latency = np.exp(rng.normal(1.5, 1.2, n)) * (1 + which)
            for t, w, lat in zip(ts, which, latency, strict=True):
                args = (float(t), ENDPOINTS[w], "authentication", float(lat), 200, True, TIMING)
                exact.record(*args)
                shipper.record(*args)
            exact.flush(f"w{worker}")
            # what a worker ships and the master writes (scenarios/hooks.py)
            merged.write_histograms(shipper.take_histograms(), f"w{worker}")
    exact.close()
    merged.close()
    return SampleStore(tmp_path / "exact"), SampleStore(tmp_path / "histogram")


def test_merged_histograms_are_within_a_tenth_of_a_percent_of_exact(tmp_path: Path) -> None:
    exact, merged = _record(tmp_path)
    assert (exact.mode, merged.mode) == ("exact", "histogram")
    for store in (exact, merged):
        store.judge_from(0.0)
    qs = (50.0, 95.0, 99.0)
    exact_rows = {e.endpoint: e for e in exact.endpoint_stats(qs)}
    merged_rows = {e.endpoint: e for e in merged.endpoint_stats(qs)}
    assert set(exact_rows) == set(merged_rows) == set(ENDPOINTS)
    for endpoint, e in exact_rows.items():
        m = merged_rows[endpoint]
        assert m.n == e.n  # counts are exact: ranks are the same
        for q, want, got in zip(qs, e.quantiles, m.quantiles, strict=True):
            assert abs(got - want) <= RESOLUTION * want, (endpoint, q, want, got)
    pooled_exact = exact.interval(ENDPOINTS[:2], 95.0)
    pooled = merged.interval(ENDPOINTS[:2], 95.0)
    assert pooled.n == pooled_exact.n
    assert pooled.value is not None
    assert pooled_exact.value is not None
    assert abs(pooled.value - pooled_exact.value) <= RESOLUTION * pooled_exact.value
    # the interval is widened by the quantisation: it still holds the exact one's ends
    assert pooled.low is not None
    assert pooled_exact.low is not None
    assert pooled.high is not None
    assert pooled_exact.high is not None
    assert pooled.low <= pooled_exact.low
    assert pooled.high >= pooled_exact.high
    means, carried = merged.server_timing_means()
    assert carried == exact.totals("judged").n
    assert means.loc[ENDPOINTS[0], "app"] == 1.5


def test_a_histogram_filled_at_once_is_the_one_filled_value_by_value() -> None:
    latency = np.exp(np.random.default_rng(9).normal(1.0, 1.5, 20_000))
    one_by_one = new_histogram()
    for value in latency:
        one_by_one.record_value(to_units(float(value)))
    at_once = HdrHistogram.decode(encode_many(latency))
    assert at_once.get_total_count() == one_by_one.get_total_count()
    for q in (0.1, 50.0, 95.0, 99.0, 99.99, 100.0):
        assert at_once.get_value_at_percentile(q) == one_by_one.get_value_at_percentile(q)
    values, counts = buckets(encode_many(latency))
    expected_values, expected_counts = buckets(one_by_one.encode())
    assert values.tolist() == expected_values.tolist()
    assert counts.tolist() == expected_counts.tolist()


def test_auto_records_exactly_below_the_masters_ceiling_and_histograms_above() -> None:
    shape = ShapeInfo("s", 10.0, 10, 2, 10, 60.0, wait_s=(0.5, 1.0), peak_users=100)
    assert MASTER_CEILING_SPS > 0
    assert samples_mode(RunOptions(shape="s"), shape) == "exact"  # 100 users / 0.5 s
    above = RunOptions(shape="s", open_rate=MASTER_CEILING_SPS * 1.5)
    assert samples_mode(above, shape) == "histogram"
    assert samples_mode(RunOptions(shape="s", samples="histogram"), shape) == "histogram"
    assert samples_mode(RunOptions(shape="s", samples="exact", open_rate=2e6), shape) == "exact"

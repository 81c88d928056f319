"""Server-Timing is parsed into the st_app/st_db/st_hash/st_cache columns of samples.csv."""

from __future__ import annotations

import pytest

from velro_perf.scenarios.servertiming import ServerTiming, parse_server_timing


def test_the_contract_metrics_are_read() -> None:
    header = 'app;dur=12.5, db;dur=3.25, hash;dur=18, cache;desc="L2"'
    assert parse_server_timing(header) == ServerTiming(12.5, 3.25, 18.0, "L2")


def test_absent_metrics_are_none() -> None:
    assert parse_server_timing("app;dur=0.4") == ServerTiming(0.4, None, None, None)
    assert parse_server_timing(None) == ServerTiming()
    assert parse_server_timing("") == ServerTiming()


def test_a_repeated_metric_is_summed() -> None:
    assert parse_server_timing("app;dur=5, db;dur=1.5, db;dur=2").db == pytest.approx(3.5)


def test_an_unquoted_cache_tier_and_odd_spacing_are_accepted() -> None:
    timing = parse_server_timing(" APP ; dur = 1.0 ,cache; desc=miss")
    assert timing.app == 1.0
    assert timing.cache == "miss"


def test_unknown_metrics_and_bad_durations_are_ignored() -> None:
    timing = parse_server_timing("edge;dur=9, app;dur=abc, db;dur=2, total")
    assert timing == ServerTiming(None, 2.0, None, None)

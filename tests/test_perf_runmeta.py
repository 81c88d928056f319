"""A run's identity: the config hash, the run id, config.json as plain JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from velro_perf.runmeta import config_hash, make_run_id

ROOT = Path(__file__).resolve().parents[1]


# -- config hash ---------------------------------------------------------------------------


def _config(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "run_id": "20251124-160000-smoke-fixed",
        "shape": "smoke",
        "target": "reference",
        "target_url": "http://127.0.0.1:41234",
        "service_profile": "fixed",
        "processes": 1,
        "open_model_rate": None,
        "budgets_file": "/somewhere/fixtures/budgets.toml",
        "budgets_sha256": "ab" * 32,
        "seed": {"users": 100, "teams": 10, "projects": 100},
        "database": "sqlite",
        "database_url": "sqlite:////runs/20251124-160000-smoke-fixed/velro.db",
        "redis": "127.0.0.1:6379",
        "redis_url": "redis://127.0.0.1:6379/0",
        "redis_prefix": "velro_perf:20251124-160000-smoke-fixed:",
    }
    base.update(changes)
    return base


def test_config_hash_ignores_times_ports_and_paths() -> None:
    other_run = _config(
        run_id="20251125-090000-smoke-fixed",
        target_url="http://127.0.0.1:50000",
        budgets_file="/elsewhere/budgets.toml",
        database_url="sqlite:////tmp/other/velro.db",
        redis_prefix="velro_perf:20251125-090000-smoke-fixed:",
        started_at="2025-11-25T09:00:00Z",
        config_hash="stale",
    )
    assert config_hash(other_run) == config_hash(_config())
    assert len(config_hash(_config())) == 64


@pytest.mark.parametrize(
    "change",
    [
        {"shape": "ramp-10k"},
        {"service_profile": "degraded"},
        {"processes": 2},
        {"open_model_rate": 50.0},
        {"seed": {"users": 101, "teams": 10, "projects": 100}},
        {"budgets_sha256": "cd" * 32},
        {"database": "postgres"},
    ],
)
def test_config_hash_changes_with_the_configuration(change: dict[str, object]) -> None:
    assert config_hash(_config(**change)) != config_hash(_config())


def test_config_hash_does_not_depend_on_key_order() -> None:
    config = _config()
    assert config_hash(dict(reversed(list(config.items())))) == config_hash(config)


def test_run_id_is_utc_time_shape_and_profile() -> None:
    from datetime import UTC, datetime

    moment = datetime(2025, 11, 24, 16, 5, 9, tzinfo=UTC)
    assert make_run_id("smoke", "degraded", moment) == "20251124-160509-smoke-degraded"


def test_config_json_round_trip_is_plain_json() -> None:
    assert json.loads(json.dumps(_config())) == _config()

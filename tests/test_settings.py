"""Settings are read once from VELRO_ variables, and a bad one names itself."""

from __future__ import annotations

import pytest

from velro.errors import ServiceConfigError
from velro.settings import Settings


def test_settings_are_read_once_from_velro_variables() -> None:
    s = Settings.from_env(
        {"VELRO_PROFILE": "degraded", "VELRO_EXECUTOR_WORKERS": "7", "VELRO_JWT_SECRET": "s" * 40}
    )
    assert s.profile == "degraded"
    assert s.executor_workers == 7
    with pytest.raises(AttributeError):
        s.profile = "fixed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"VELRO_PROFILE": "fast"}, "VELRO_PROFILE"),
        ({"VELRO_EXECUTOR_WORKERS": "many"}, "VELRO_EXECUTOR_WORKERS"),
        ({"VELRO_DB_TIMEOUT_S": "-1"}, "VELRO_DB_TIMEOUT_S"),
        ({"VELRO_DATABASE_URL": "mysql://x"}, "VELRO_DATABASE_URL"),
    ],
)
def test_a_bad_setting_names_itself(env: dict[str, str], named: str) -> None:
    with pytest.raises(ServiceConfigError, match=named):
        Settings.from_env(env)

"""The target: only loopback URLs, passwords redacted, and the reference service's own SQLite
file, Redis keys and PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

import pytest

from velro_perf.errors import ConfigError, UsageError
from velro_perf.target import (
    ReferenceService,
    ServiceOptions,
    is_loopback_url,
    redact_url,
    require_loopback,
)

ROOT = Path(__file__).resolve().parents[1]


# -- loopback rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.1.2.3:8000", True),
        ("http://localhost:8000", True),
        ("http://LOCALHOST", True),
        ("http://[::1]:8000", True),
        ("https://127.0.0.1", True),
        ("http://10.0.0.1:8000", False),
        ("http://192.168.1.5", False),
        ("http://example.com", False),
        ("http://localhost.example.com", False),
        ("http://127.0.0.1.nip.io", False),
        ("http://[::2]:8000", False),
        ("ftp://127.0.0.1", False),
        ("127.0.0.1:8000", False),
    ],
)
def test_only_loopback_targets_are_accepted(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


def test_require_loopback_names_the_target_and_the_fix() -> None:
    with pytest.raises(UsageError, match=r"'http://10\.0\.0\.1'.*127\.0\.0\.1"):
        require_loopback("http://10.0.0.1")
    assert require_loopback("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"


def test_redacted_urls_keep_no_password() -> None:
    assert redact_url("postgresql://u:secret@127.0.0.1:5432/db") == (
        "postgresql://u:***@127.0.0.1:5432/db"
    )
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


# -- the reference service's private resources ----------------------------------------------


def _service(tmp_path: Path, **options: object) -> ReferenceService:
    return ReferenceService(
        ServiceOptions(run_dir=tmp_path, run_id="20251124-160000-unit-fixed", **options)  # type: ignore[arg-type]
    )


def test_sqlite_lives_in_the_run_folder(tmp_path: Path) -> None:
    service = _service(tmp_path, use_redis=False)
    service.prepare()
    assert service.database_url == f"sqlite:///{tmp_path.resolve() / 'velro.db'}"
    assert service.redis_url == ""
    assert service.url.startswith("http://127.0.0.1:")
    service.stop()


def test_an_unknown_database_choice_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--database 'mysql'"):
        _service(tmp_path, database="mysql", use_redis=False).prepare()


@pytest.mark.redis
def test_redis_keys_of_the_run_are_deleted_and_no_others(
    tmp_path: Path, redis_server: str, redis_prefix: str
) -> None:
    import redis

    client = redis.Redis.from_url(redis_server)
    neighbour = redis_prefix + "not-ours"
    client.set(neighbour, "1")
    service = _service(tmp_path)
    service.prepare()
    assert service.redis_url.startswith("redis://127.0.0.1:6379/")
    env = service.env()
    prefix = env["VELRO_REDIS_PREFIX"]
    assert "20251124-160000-unit-fixed" in prefix
    db = redis.Redis.from_url(service.redis_url)
    db.set(prefix + "authz:1", "x")
    db.set(prefix + "rl:2", "y")
    service.stop()
    assert list(db.scan_iter(match=prefix + "*")) == []
    assert client.get(neighbour) == b"1"


@pytest.mark.postgres
def test_postgres_gets_a_database_of_its_own_dropped_after(
    tmp_path: Path, postgres_server: str
) -> None:
    import psycopg

    service = _service(tmp_path, database="postgres", use_redis=False)
    service.prepare()
    name = service.database_url.rsplit("/", 1)[1]
    assert name == "velro_run_20251124_160000_unit_fixed"

    def exists() -> bool:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return row is not None

    assert exists()
    service.stop()
    assert not exists()


def test_the_shape_s_access_token_lifetime_reaches_the_reference_service(tmp_path: Path) -> None:
    import json

    import httpx

    service = _service(
        tmp_path,
        use_redis=False,
        access_token_ttl_s=120,
        seed_users=2,
        seed_teams=1,
        seed_projects=2,
    )
    with service:
        service.prepare()
        service.start()
        fixtures = json.loads(service.fixtures_path.read_text())  # type: ignore[union-attr]
        body = {"email": fixtures["users"][0]["email"], "password": fixtures["password"]}
        with httpx.Client(base_url=service.url + "/api/v1", timeout=10) as client:
            pair = client.post("/auth/login", json=body).json()
            assert pair["expires_in"] == 120
            rotated = client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
            assert rotated.json()["expires_in"] == 120

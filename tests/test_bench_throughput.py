"""The throughput comparison's parts: the bare app, the load generator, the script end to end.

Nothing here asserts a ratio or a rate: performance is measured by the script, not asserted.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.bare_app import create_app
from benchmarks.loadgen import drive
from tests.helpers import LiveServer
from velro.settings import Settings
from velro.tokens import TokenCodec

ROOT = Path(__file__).resolve().parents[1]
SECRET = "throughput-test-secret-" + "x" * 32


@pytest.fixture
def bare_server() -> Iterator[LiveServer]:
    server = LiveServer(create_app(SECRET)).start()
    yield server
    server.stop()


def token(secret: str = SECRET) -> str:
    return TokenCodec(Settings(jwt_secret=secret, redis_url="")).issue("user-1", 0)


def test_the_bare_app_accepts_the_services_token_and_refuses_another(
    bare_server: LiveServer,
) -> None:
    import httpx

    ok = httpx.get(f"{bare_server.url}/bare/me", headers={"Authorization": f"Bearer {token()}"})
    assert ok.status_code == 200
    assert ok.json() == {"id": "user-1", "ver": 0}
    forged = token("another-secret-" + "y" * 32)
    bad = httpx.get(f"{bare_server.url}/bare/me", headers={"Authorization": f"Bearer {forged}"})
    assert bad.status_code == 401
    assert httpx.get(f"{bare_server.url}/bare/me").status_code == 401


def test_the_load_generator_counts_only_200s_in_the_measured_window(
    bare_server: LiveServer,
) -> None:
    url = f"{bare_server.url}/bare/me"
    good = asyncio.run(
        drive(
            url,
            headers={"Authorization": f"Bearer {token()}"},
            connections=2,
            warmup_s=0.1,
            duration_s=0.4,
        )
    )
    assert good.requests > 0
    assert good.errors == 0
    assert good.rps == pytest.approx(good.requests / 0.4)
    refused = asyncio.run(drive(url, connections=2, warmup_s=0.0, duration_s=0.3))
    assert refused.requests == 0
    assert refused.errors > 0  # every 401 is an error, not a request served


def test_the_load_generator_refuses_a_non_loopback_target() -> None:
    with pytest.raises(ValueError, match="not loopback"):
        asyncio.run(drive("http://example.com/", duration_s=0.1))


@pytest.mark.slow
def test_the_throughput_script_runs_and_writes_well_formed_json(tmp_path: Path) -> None:
    out = tmp_path / "throughput.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.throughput", "--duration", "1", "--warmup", "0.3",
            "--repeats", "1", "--connections", "4", "--out", str(out),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert set(doc["rps"]) == {"bare", "me", "check"}
    assert all(v > 0 for v in doc["rps"].values())
    assert set(doc["ratios"]) == {"me", "check"}
    assert {p["endpoint"] for p in doc["phases"]} == {"bare", "me", "check"}
    assert all(p["errors"] == 0 for p in doc["phases"])

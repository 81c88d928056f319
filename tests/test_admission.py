"""Load shedding: a standing event-loop lag sheds new requests at once with 503 and
Retry-After; one pause does not; monitoring is always served. The lag is real CPU work on the
server's own loop, over a real socket."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.helpers import serve
from velro.admission import Admission


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_one_pause_does_not_shed_but_a_standing_lag_does_until_it_clears() -> None:
    admission = Admission(max_lag_s=0.05, window=3)
    admission.note_lag(0.5)  # one garbage-collector pause
    assert not admission.refuse()
    admission.note_lag(0.2)
    admission.note_lag(0.3)  # three samples over the bound: a queue
    assert admission.refuse()
    admission.note_lag(0.01)
    assert not admission.refuse()
    assert (admission.shed, admission.episodes) == (1, 1)


def test_a_lagging_loop_refuses_new_requests_with_503_and_still_serves_health(
    live_server: Callable[..., Any], make_settings: Callable[..., Any]
) -> None:
    settings = make_settings(shed_max_lag_s=0.05)
    server = serve(live_server, settings)
    admission: Admission = server.app.state.admission
    loop = admission.loop
    assert loop is not None
    busy_until = time.monotonic() + 3.0

    def chunk() -> None:
        _spin(0.2)  # every timer of the loop fires about 0.15 s late: a standing lag
        if time.monotonic() < busy_until:
            loop.call_soon(chunk)

    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/api/v1/auth/me").status_code == 401  # served while idle
        loop.call_soon_threadsafe(chunk)
        deadline = time.monotonic() + 2.5
        while not admission.shedding and time.monotonic() < deadline:
            time.sleep(0.05)
        assert admission.shedding
        r = client.get("/api/v1/auth/me")
        assert r.status_code == 503
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "overloaded"
        assert r.json()["error"]["request_id"] == r.headers["x-request-id"]
        assert "content-security-policy" in r.headers
        assert client.get("/health").status_code == 200  # monitoring is never shed
        while time.monotonic() < busy_until + 0.5:
            time.sleep(0.05)
        for _ in range(40):  # the lag clears within a few samples
            if client.get("/api/v1/auth/me").status_code == 401:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("still shedding after the loop caught up")
    metrics = httpx.get(f"{server.url}/api/v1/performance/metrics", timeout=10).json()
    assert metrics["overload"]["admission"]["shed"] >= 1

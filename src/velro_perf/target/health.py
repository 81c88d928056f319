"""Is the target answering: once (a given target), or polled until healthy (one we started)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

import httpx

from velro_perf.errors import ServiceStartError, TargetUnreachableError

__all__ = ["check_reachable", "wait_healthy"]


def check_reachable(url: str, timeout_s: float = 5.0) -> None:
    """Raise TargetUnreachableError unless something answers HTTP at `url` (any status)."""
    try:
        with httpx.Client(timeout=timeout_s) as client:
            client.get(url + "/health")
    except httpx.HTTPError as exc:
        raise TargetUnreachableError(
            f"target {url} is unreachable ({type(exc).__name__}: {exc}); "
            "start the service first or check the URL and port"
        ) from exc


class _Polled(Protocol):
    def poll(self) -> int | None: ...


def wait_healthy(
    url: str,
    process: _Polled | None,
    timeout_s: float,
    log_path: Path,
    interval_s: float = 0.25,
    path: str = "/health",
) -> None:
    """Poll ``GET <url><path>`` until it answers 200. ServiceStartError when `process` exits
    first, TargetUnreachableError when `timeout_s` runs out; both name `log_path`."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise ServiceStartError(
                    f"the server for {url} exited with code {process.poll()} before it was "
                    f"healthy; see {log_path}"
                )
            try:
                response = client.get(url + path)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(interval_s)  # polling for readiness, not modelling a cost
    raise TargetUnreachableError(
        f"the service at {url} was not healthy after {timeout_s:.0f} s (last: {last}); "
        f"see {log_path}"
    )

"""What a run records about itself: its configuration (and that configuration's hash) and its
circumstances (git state, versions, the machine), as `docs/run-format.md` lays them out.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psutil

from velro_perf.reports.runfiles import GitState, Machine, Versions

__all__ = [
    "RUN_SPECIFIC_FIELDS",
    "config_hash",
    "git_state",
    "machine",
    "make_run_id",
    "utc_iso",
    "versions",
]

# Fields that differ from one run of the same configuration to the next (times, ports, paths,
# database names): left out of the hash so that equal configurations hash equal in history.csv
RUN_SPECIFIC_FIELDS = frozenset(
    {
        "config_hash",
        "run_id",
        "started_at",
        "ended_at",
        "run_dir",
        "out",
        "port",
        "target_url",
        "database_url",
        "redis_url",
        "redis_prefix",
        "budgets_file",
        "shapes_file",
        "api_file",
        "fixtures_file",
    }
)


def config_hash(config: Mapping[str, object]) -> str:
    """SHA-256 of the canonical JSON of `config` without its run-specific fields."""
    stable = {k: v for k, v in config.items() if k not in RUN_SPECIFIC_FIELDS}
    canonical = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def make_run_id(shape: str, profile: str, now: datetime | None = None) -> str:
    """`YYYYmmdd-HHMMSS-<shape>-<profile>` in UTC."""
    moment = now or datetime.now(UTC)
    return f"{moment:%Y%m%d-%H%M%S}-{shape}-{profile}"


def utc_iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def git_state(root: Path) -> GitState:
    """`{"commit", "dirty"}` of the working tree at `root`; nulls outside a git checkout."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(  # noqa: S603 -- fixed argv, read-only git commands
                ["git", "-C", str(root), *args],  # noqa: S607 -- git from PATH, as a user runs it
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit.strip() if commit else None,
        "dirty": bool(status.strip()) if status is not None else None,
    }


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def versions() -> Versions:
    return {
        "python": platform.python_version(),
        "locust": _version("locust"),
        "velro": _version("velro"),
        "platform": platform.platform(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> Machine:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "hostname": socket.gethostname(),
    }

"""The system under test: checks on a given target, and the reference service's lifetime.

Load only ever goes to this machine, so a target must be a loopback address. With no target
the runner starts the reference service itself (`velro db init`, `velro seed`, `velro serve`)
on a private database (SQLite in the run folder, or a PostgreSQL database of its own) and a
Redis key prefix nobody else uses, and gives all of it back when the run ends.

One module per job:

    urls      the loopback rule and passwords redacted from URLs
    ports     a free port, and whether a given one is free
    health    is something answering, and waiting until /health says 200
    stores    the run's own PostgreSQL database and Redis key prefix, and their removal
    service   the reference service's lifetime (uses all of the above)
"""

from __future__ import annotations

from velro_perf.target.health import check_reachable, wait_healthy
from velro_perf.target.ports import check_port_free, free_port
from velro_perf.target.service import KEEP_ALIVE_S, SERVICE_NICE, ReferenceService, ServiceOptions
from velro_perf.target.stores import delete_redis_prefix, glob_escape, own_redis_prefix
from velro_perf.target.urls import is_loopback_url, redact_url, require_loopback

__all__ = [
    "KEEP_ALIVE_S",
    "SERVICE_NICE",
    "ReferenceService",
    "ServiceOptions",
    "check_port_free",
    "check_reachable",
    "delete_redis_prefix",
    "free_port",
    "glob_escape",
    "is_loopback_url",
    "own_redis_prefix",
    "redact_url",
    "require_loopback",
    "wait_healthy",
]

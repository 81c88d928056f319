"""Settings, read once from ``VELRO_*`` variables into a frozen object.

``create_app(settings)`` takes the object, so tests hand in settings instead of patching the
environment (starlette ``Config``; the Flask tutorial's ``create_app(test_config)``).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from velro.errors import ServiceConfigError

__all__ = ["Profile", "Settings"]

Profile = Literal["fixed", "degraded"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of the reference service; each field is ``VELRO_<NAME>`` in the environment."""

    profile: Profile = "fixed"
    # SQLite is the embedded default so a newcomer needs no server; PostgreSQL via
    # postgresql+psycopg://user@host/db.
    database_url: str = "sqlite:///var/velro.db"
    # Empty means "no Redis": the limiter and the cache then keep their state in the process
    # (and in the database for L3).
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "velro:"
    # A Redis call that takes longer than this counts as an outage: the circuit breaker opens
    # and requests go on without L2 rather than stall (tests/test_cache_outage.py). The time
    # is the event loop's, so a busy loop's own lag counts in it: at 0.05 s, ramp-10k's hold
    # (loop lag up to 0.5 s) opened the breaker 3,000-4,600 times per worker with Redis
    # answering, and every miss then went to the database. Above the shedding bound.
    redis_socket_timeout_s: float = 0.3
    redis_breaker_cooldown_s: float = 5.0

    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    jwt_issuer: str = "velro"
    jwt_audience: str = "velro-api"
    # the access token's lifetime (velro serve --access-token-ttl)
    token_ttl_s: int = 900
    # each refresh token's, from its issue: a sliding lifetime, since every refresh issues a
    # new one (velro serve --refresh-token-ttl; velro.refresh). 14 days, as a session of a
    # client that is used every week or two stays signed in.
    refresh_token_ttl_s: int = 14 * 86400

    # OWASP Password Storage Cheat Sheet, argon2id minimum: m=19 MiB, t=2, p=1.
    argon2_memory_kib: int = 19456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1

    # limits-style rate strings, e.g. "10/minute".
    login_failures_per_account: str = "10/minute"
    login_failures_per_address: str = "300/minute"

    max_body_bytes: int = 64 * 1024

    executor_workers: int = 20
    # argon2id is CPU-bound: at most one hash per core across every worker process of the
    # service together, at a lower priority than the event loops (hashbudget.py); velro
    # serve makes the shared directory of slots for its workers. A sign-in that would wait
    # longer than hash_wait_max_s for a slot (or come past hash_queue_max waiting or hashing)
    # is refused at once with 503 and Retry-After: login p95 < 200 ms is the PRD's, and the
    # hash itself and the request around it need the rest.
    hash_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    hash_slots_dir: str = ""
    hash_nice: int = 2
    hash_queue_max: int = 64  # across the workers: each process takes its share
    hash_wait_max_s: float = 0.12
    # Load shedding (admission.py): while the event loop's lag stays over this, new requests
    # are refused at once with 503 and Retry-After instead of waiting in socket buffers.
    shed_max_lag_s: float = 0.25
    # The garbage collector's first threshold (gctune.py); Python's default is 700.
    gc_gen0_threshold: int = 10_000
    # worker processes serving together (velro serve --workers sets it): shares of the budgets
    workers: int = 1
    db_timeout_s: float = 5.0
    hash_timeout_s: float = 5.0

    # How long L1 trusts an entry when other processes' invalidations may not reach it (no
    # Redis, or its channel down): the bound within which another process sees a revoked
    # grant or a logout (README). While the channel is live, L1 keeps entries l1_live_ttl_s.
    l1_ttl_s: float = 5.0
    l1_live_ttl_s: float = 300.0
    l1_max_entries: int = 100_000
    # L2's TTL bounds only a value whose invalidation Redis missed (tiered.py): every change
    # tombstones its key, and decisions are keyed by ACL versions.
    l2_ttl_s: float = 300.0
    l3_ttl_s: float = 300.0
    # Denials live as long as allows: a user's denied projects come back as often as the
    # others (in ramp-10k's hold each key every 2-3 minutes), and at 30 s every such check
    # missed and read the database: the hold's hit rate was 88 % (README). A grant just given
    # works at once all the same: it bumps the project's ACL version, and so the key, in this
    # process, and in others within the L1 TTL.
    deny_ttl_s: float = 300.0
    service_key_ttl_s: float = 300.0

    log_level: str = "warning"

    def __post_init__(self) -> None:
        if self.profile not in get_args(Profile):
            raise ServiceConfigError(
                f"VELRO_PROFILE is {self.profile!r}; give one of: {', '.join(get_args(Profile))}"
            )
        if not self.database_url.startswith(("sqlite://", "postgresql")):
            raise ServiceConfigError(
                f"VELRO_DATABASE_URL is {self.database_url!r}; give sqlite:///path/to/file.db "
                "or postgresql+psycopg://user@host:port/database"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
                raise ServiceConfigError(
                    f"VELRO_{f.name.upper()} is {value!r}; give a positive number"
                )
        if len(self.jwt_secret) < 32:
            raise ServiceConfigError(
                "VELRO_JWT_SECRET is shorter than 32 characters; give a longer one"
            )

    @property
    def is_degraded(self) -> bool:
        return self.profile == "degraded"

    @property
    def redis_enabled(self) -> bool:
        return bool(self.redis_url)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``VELRO_*`` variables; a value that does not parse names itself and the fix."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f"VELRO_{f.name.upper()}"
            if name not in environ:
                continue
            raw = environ[name].strip()
            kind = type(getattr(_DEFAULTS, f.name))
            try:
                values[f.name] = kind(raw) if kind in (int, float) else raw
            except ValueError:
                raise ServiceConfigError(
                    f"{name} is {raw!r}; give a {'whole number' if kind is int else 'number'}"
                ) from None
        return cls(**values)


_DEFAULTS = Settings(jwt_secret="x" * 32)

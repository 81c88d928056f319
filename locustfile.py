"""Load scenarios of the Velro performance suite (CONTRACT.md over HTTP, any target).

    locust -f locustfile.py --host http://127.0.0.1:8000                 # web UI, smoke shape
    locust -f locustfile.py --host http://127.0.0.1:8000 --headless \\
        --velro-shape baseline --velro-out runs/x --velro-fixtures seed.json

The shape named by --velro-shape (fixtures/shapes.toml) drives the user count and stops the
test by itself; fixtures/workload.toml sets the mix of user classes. See scenarios/.
"""

from __future__ import annotations

from locust import LoadTestShape

from scenarios.hooks import install
from scenarios.runtime import Runtime
from scenarios.users import (
    AbuseUser,
    AuthorizationUser,
    LoginUser,
    RegistrationUser,
    ServiceKeyUser,
    TokenAuthUser,
)

__all__ = [
    "AbuseUser",
    "AuthorizationUser",
    "LoginUser",
    "RegistrationUser",
    "ServiceKeyUser",
    "TokenAuthUser",
    "VelroShape",
]

install()


class VelroShape(LoadTestShape):
    """The stages of the shape chosen with --velro-shape; None after the last one ends."""

    def tick(self) -> tuple[int, float] | None:
        if self.runner is None:
            return None
        return Runtime.of(self.runner.environment).shape.target_at(self.get_run_time())

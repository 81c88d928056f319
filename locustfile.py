"""Load scenarios of the Velro performance suite (CONTRACT.md over HTTP, any target).

    locust -f locustfile.py --host http://127.0.0.1:8000                 # web UI, smoke shape
    locust -f locustfile.py --host http://127.0.0.1:8000 --headless \\
        --velro-shape baseline --velro-out runs/x --velro-fixtures seed.json

The shape named by --velro-shape (fixtures/shapes.toml) drives the user count and stops the
test by itself; fixtures/workload.toml sets the mix of user classes. See scenarios/.
"""

from __future__ import annotations

from locust import LoadTestShape
from locust.runners import MasterRunner

from pathlib import Path

from velro_perf.scenarios.capacityplan import RATE_MESSAGE, PlanFile
from velro_perf.scenarios.hooks import install
from velro_perf.scenarios.runtime import Runtime
from velro_perf.scenarios.users import (  # noqa: F401 - Locust runs the User classes of this module
    AbuseUser,
    AuthorizationUser,
    LoginUser,
    RegistrationUser,
    ServiceKeyUser,
    TokenAuthUser,
)

install()


class VelroShape(LoadTestShape):
    """The stages of the shape chosen with --velro-shape; None after the last one ends.

    With --velro-capacity-plan the level comes from that file instead (velro-perf capacity
    chooses each step's level after judging the last: scenarios/capacityplan.py)."""

    plan: PlanFile | None = None
    open_rate: float | None = None

    def tick(self) -> tuple[int, float] | None:
        if self.runner is None:
            return None
        runtime = Runtime.of(self.runner.environment)
        if not runtime.options.capacity_plan:
            return runtime.shape.target_at(self.get_run_time())
        if self.plan is None:
            self.plan = PlanFile(Path(runtime.options.capacity_plan))
        level = self.plan.current()
        if level is None or level.stop:
            return None
        if level.open_rate is not None and level.open_rate != self.open_rate:
            self._set_rate(runtime, level.open_rate)
        return level.users, level.spawn_rate

    def _set_rate(self, runtime: Runtime, rate: float) -> None:
        """The open model's new total rate: this process's, or each worker's share."""
        if self.open_rate is not None:  # the first is the one Locust was started with
            if isinstance(self.runner, MasterRunner):
                workers = max(1, self.runner.worker_count)
                self.runner.send_message(RATE_MESSAGE, {"rate": rate / workers})
            else:
                runtime.open_model.retarget(rate)
        self.open_rate = rate

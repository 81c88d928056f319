"""The least a Locust test can do per request: the yardstick of benchmarks/generator_cost.py.

One FastHttpUser class, as Locust's documentation writes one: log in once (again after
`Retry-After` when the service's sign-in queue refuses it), then
`GET /api/v1/auth/me` with the bearer token, no checks beyond Locust's own status check, no
recording beyond Locust's statistics. GENCOST_FIXTURES names the `velro seed` fixtures file;
GENCOST_RATE is each user's requests a second (Locust's `constant_throughput`).
"""

from __future__ import annotations

from locust import FastHttpUser, constant_throughput, task

import json
import os
import random

import gevent

_SEED = json.loads(open(os.environ["GENCOST_FIXTURES"], encoding="utf-8").read())  # noqa: SIM115
_RATE = float(os.environ.get("GENCOST_RATE", "4"))


class MinimalUser(FastHttpUser):
    wait_time = constant_throughput(_RATE)

    def on_start(self) -> None:
        user = random.choice(_SEED["users"])
        while True:  # the users start together: a sign-in refused 503 comes back after it
            answer = self.client.post(
                "/api/v1/auth/login", json={"email": user["email"], "password": _SEED["password"]}
            )
            if answer.status_code == 200:
                break
            retry_after = answer.headers.get("Retry-After") if answer.headers else None
            gevent.sleep(float(str(retry_after or 1)))
        self.headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    @task
    def me(self) -> None:
        self.client.get("/api/v1/auth/me", headers=self.headers)

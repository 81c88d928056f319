"""The simulated users, one class per kind of traffic (the categories of samples.csv).

Each logs in once in on_start when it needs a token (category `setup`), then repeats its
task with a randomised wait (`between` the shape's wait range): fixed pacing with a fast
spawn makes synchronised bursts. In the open model the wait is instead the time to the next
slot of the schedule (scenarios/openmodel.py).
"""

from __future__ import annotations

from locust import FastHttpUser, task

import collections
import logging
import random
import time
from collections.abc import Sequence
from typing import Any, ClassVar, NoReturn

import gevent

from scenarios.checks import (
    RETRY_AFTER,
    Expect,
    Verdict,
    authz_body,
    project_body,
    token_body,
    user_body,
)
from scenarios.http import call
from scenarios.identity import identity
from scenarios.runtime import runtime
from scenarios.seed import SeedUser
from scenarios.tokens import BAD_TOKEN_KINDS, bad_token

__all__ = [
    "USER_CLASSES",
    "AbuseUser",
    "AuthorizationUser",
    "LoginUser",
    "RegistrationUser",
    "ServiceKeyUser",
    "TokenAuthUser",
    "VelroUser",
]

log = logging.getLogger(__name__)
API = "/api/v1"
SEED_WAIT_S = 300.0
# the window of the failed-login limit the abuse user probes (the contract's "a minute")
LIMIT_WINDOW_S = 60.0
# renew a token this long before it expires, so a soak never sends an expired one
TOKEN_MARGIN_S = 30.0


_retired: set[str] = set()


def _retire(reason: str) -> NoReturn:
    """End this user quietly: the reason is logged once per process, not once per user.

    GreenletExit ends User.run through its normal path (on_stop) without the traceback
    Locust logs for a StopUser raised in on_start."""
    if reason not in _retired:
        _retired.add(reason)
        log.error("stopping users: %s", reason)
    raise gevent.GreenletExit


class VelroUser(FastHttpUser):
    """Shared plumbing: seed access, login, open-model pacing, checked requests."""

    abstract = True
    category: ClassVar[str] = ""
    needs_token: ClassVar[bool] = False
    # the intended start of the next request (open model), set by wait_time
    _intended: float | None = None

    def wait_time(self) -> float:
        if runtime.open_model.active:
            slot = runtime.open_model.claim()
            self._intended = slot
            return max(0.0, slot - time.time())
        return runtime.wait_s()

    def on_start(self) -> None:
        self._intended = None
        self.token: str | None = None
        self.token_expires = 0.0
        seed = runtime.seeds.wait(SEED_WAIT_S)
        if seed is None:
            _retire("no seed: see the fixtures or provisioning error logged before")
        self.seed = seed
        self.account: SeedUser = runtime.seeds.next_user()
        # Every simulated user comes from 127.0.0.1; its own X-Forwarded-For address (which a
        # server behind a trusted proxy, uvicorn's default for loopback, takes as the client
        # address) keeps one abusive user's failed logins from rate-limiting all the others
        # by address, as it would not in production.
        self.client_address = identity.client_address()
        self.prepare()
        if self.needs_token:
            self.ensure_token()
        if runtime.open_model.active:
            gevent.sleep(self.wait_time())

    def prepare(self) -> None:
        """Per-class setup before the first task."""

    def request(
        self,
        method: str,
        url: str,
        *,
        name: str,
        expects: Sequence[Expect],
        category: str | None = None,
        json: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        label: str | None = None,
    ) -> Verdict:
        category = category or self.category
        intended = None
        if category != "setup":
            # a setup login inside a task must not take the slot of the measured request
            intended, self._intended = self._intended, None
        started = time.time()
        verdict = call(
            self.client,
            method,
            url,
            name=name,
            category=category,
            expects=expects,
            json=json,
            token=token,
            headers={"X-Forwarded-For": self.client_address, **(headers or {})},
            intended_start=intended,
            label=label,
        )
        if intended is not None:
            runtime.open_model.done(intended, started, time.time())
        return verdict

    def login(self, user: SeedUser, category: str) -> Verdict:
        verdict = self.request(
            "POST",
            f"{API}/auth/login",
            name=f"{API}/auth/login",
            category=category,
            json={"email": user.email, "password": self.seed.password},
            expects=[Expect(200, body=token_body)],
        )
        if verdict.ok:
            self.token = verdict.data["access_token"]
            self.token_expires = time.time() + float(verdict.data["expires_in"])
        return verdict

    def ensure_token(self) -> bool:
        """Log in (category setup) when there is no token or it is about to expire."""
        if self.token is None or time.time() > self.token_expires - TOKEN_MARGIN_S:
            self.token = None
            self.login(self.account, "setup")
        return self.token is not None


class TokenAuthUser(VelroUser):
    """Authentication: the check of a signed-in caller, `GET /auth/me`."""

    category = "authentication"
    needs_token = True

    @task
    def who_am_i(self) -> None:
        if self.ensure_token():
            self.request(
                "GET",
                f"{API}/auth/me",
                name=f"{API}/auth/me",
                token=self.token,
                expects=[Expect(200, body=user_body(user_id=self.account.id))],
            )


class AuthorizationUser(VelroUser):
    """Authorization: `GET /authz/check` and `GET /projects/{id}` over own, shared,
    team-shared and others' projects."""

    category = "authorization"
    needs_token = True

    def prepare(self) -> None:
        # People come back to the few projects they work on; a uniform draw over every
        # project they can see would make each request a first visit, which no cache (and no
        # real workload) sees.
        workload = runtime.workload
        assert workload is not None
        self.projects = {
            name: random.sample(
                self.account.projects(name),
                min(workload.working_set, len(self.account.projects(name))),
            )
            for name in workload.relations
        }

    def _pick(self) -> tuple[str, str] | None:
        workload = runtime.workload
        assert workload is not None
        relations = [
            name for name in workload.relations if workload.relations[name] and self.projects[name]
        ]
        if not relations:
            return None
        relation = random.choices(relations, [workload.relations[name] for name in relations])[0]
        return relation, random.choice(self.projects[relation])

    @task
    def decide(self) -> None:
        workload = runtime.workload
        assert workload is not None
        picked = self._pick()
        if picked is None or not self.ensure_token():
            return
        relation, project = picked
        kind = random.choices(list(workload.authz_tasks), list(workload.authz_tasks.values()))[0]
        if kind == "project":
            expects = (
                [Expect(404, error="not_found")]
                if relation == "denied"
                else [Expect(200, body=project_body(project))]
            )
            self.request(
                "GET",
                f"{API}/projects/{project}",
                name=f"{API}/projects/{{id}}",
                token=self.token,
                expects=expects,
            )
            return
        # read: decided by the seed for every relation; write/delete: certain only for own
        action = random.choice(("read", "read", "write", "delete")) if relation == "own" else "read"
        allowed = relation != "denied"
        self.request(
            "GET",
            f"{API}/authz/check?resource_id={project}&action={action}",
            name=f"{API}/authz/check",
            token=self.token,
            expects=[Expect(200, body=authz_body(allowed))],
        )


class LoginUser(VelroUser):
    """Login: `POST /auth/login` with the right password (one argon2id verification)."""

    category = "login"

    @task
    def log_in(self) -> None:
        self.login(self.account, "login")


class RegistrationUser(VelroUser):
    """Registration: `POST /auth/register` with emails unique across worker processes."""

    category = "registration"

    @task
    def register(self) -> None:
        email = identity.email()
        self.request(
            "POST",
            f"{API}/auth/register",
            name=f"{API}/auth/register",
            json={"email": email, "password": self.seed.password, "full_name": "Velro perf"},
            expects=[Expect(201, body=user_body(email=email))],
        )


class ServiceKeyUser(VelroUser):
    """Service keys: `GET /internal/users/{id}` with `X-Service-Key`."""

    category = "service_key"

    @task
    def lookup(self) -> None:
        key = self.seed.service_key
        if not key:
            _retire("service-key users have no service key (the seed has none)")
        user = random.choice(self.seed.users)
        self.request(
            "GET",
            f"{API}/internal/users/{user.id}",
            name=f"{API}/internal/users/{{id}}",
            headers={"X-Service-Key": key},
            expects=[Expect(200, body=user_body(user_id=user.id))],
        )


class AbuseUser(VelroUser):
    """Abuse: wrong passwords until 429 with Retry-After; missing, malformed, tampered and
    `alg: none` tokens; a wrong service key. Every refusal the contract promises is a success.

    Abuse requests carry their own names (`... [wrong password]`) so Locust's table and the
    budgets' endpoint lists never mix them with the real calls."""

    category = "abuse"
    needs_token = True

    def prepare(self) -> None:
        # a victim account of its own: locking it out never touches the seeded users
        self.victim = identity.email("abuse")
        # when each wrong password of the current streak was refused with a 401
        self.refused_at: collections.deque[float] = collections.deque()
        verdict = self.request(
            "POST",
            f"{API}/auth/register",
            name=f"{API}/auth/register",
            category="setup",
            json={"email": self.victim, "password": self.seed.password},
            expects=[Expect(201, body=user_body(email=self.victim))],
        )
        if not verdict.ok:
            _retire(f"abuse users could not register their victim account: {verdict.message}")

    @task(2)
    def wrong_password(self) -> None:
        workload = runtime.workload
        assert workload is not None
        limited = Expect(429, error="rate_limited", headers={"Retry-After": RETRY_AFTER})
        refused = Expect(401, error="invalid_credentials")
        # Up to the limit a 401 is the right answer; past it only a 429 is. The limit is a
        # rate ("10 a minute"): only the refusals of the last window count, so a server slowed
        # down by the load, whose 401s come further apart, is not blamed for them.
        now = time.monotonic()
        while self.refused_at and now - self.refused_at[0] > LIMIT_WINDOW_S:
            self.refused_at.popleft()
        expects = (
            [refused, limited] if len(self.refused_at) < workload.max_wrong_passwords else [limited]
        )
        verdict = self.request(
            "POST",
            f"{API}/auth/login",
            name=f"{API}/auth/login [wrong password]",
            json={"email": self.victim, "password": "wrong-password-1"},
            expects=expects,
        )
        if verdict.expect is not None and verdict.expect.status == 429:
            self.refused_at.clear()
        elif verdict.expect is not None:
            self.refused_at.append(now)

    @task(2)
    def bad_bearer(self) -> None:
        if not self.ensure_token():
            return
        assert self.token is not None
        kind = random.choice(BAD_TOKEN_KINDS)
        self.request(
            "GET",
            f"{API}/auth/me",
            name=f"{API}/auth/me [bad token]",
            token=bad_token(kind, self.token),
            expects=[
                Expect(401, error="invalid_token", headers={"WWW-Authenticate": r"^\s*Bearer\b"})
            ],
            label=f"{kind} token",
        )

    @task(1)
    def bad_service_key(self) -> None:
        user = random.choice(self.seed.users)
        self.request(
            "GET",
            f"{API}/internal/users/{user.id}",
            name=f"{API}/internal/users/{{id}} [bad key]",
            headers={"X-Service-Key": f"not-a-key-{identity.tag}"},
            expects=[Expect(401, error="invalid_service_key")],
        )


# category -> user class; the workload file's [users] keys
USER_CLASSES: dict[str, type[VelroUser]] = {
    "authentication": TokenAuthUser,
    "authorization": AuthorizationUser,
    "login": LoginUser,
    "registration": RegistrationUser,
    "service_key": ServiceKeyUser,
    "abuse": AbuseUser,
}

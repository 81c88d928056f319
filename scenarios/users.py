"""The simulated users, one class per kind of traffic (the categories of samples.csv).

Users drive the operations of the backend's API file (scenarios/apifile.py), never paths: the
contract is the first API file, and a backend that lacks an operation has the users that
need it switched off (scenarios/hooks.py).

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
from typing import ClassVar, NoReturn

import gevent

from scenarios.apifile import ApiFile, field_value
from scenarios.checks import Expect, Verdict
from scenarios.http import send
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
        api = runtime.api
        if api is None:
            _retire("no API file: see the configuration error logged before")
        self.api: ApiFile = api
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

    def send(
        self,
        key: str,
        values: dict[str, str] | None = None,
        *,
        expects: Sequence[Expect],
        category: str | None = None,
        token: str | None = None,
        service_key: str | None = None,
        send_credentials: bool = True,
        suffix: str = "",
        label: str | None = None,
    ) -> Verdict:
        """One described operation, sent and judged (scenarios.http.send)."""
        category = category or self.category
        intended = None
        if category != "setup":
            # a setup login inside a task must not take the slot of the measured request
            intended, self._intended = self._intended, None
        started = time.time()
        verdict = send(
            self.client,
            self.api,
            key,
            values or {},
            category=category,
            expects=expects,
            token=token if token is not None else self.token,
            service_key=service_key if service_key is not None else self.seed.service_key,
            send_credentials=send_credentials,
            suffix=suffix,
            headers={"X-Forwarded-For": self.client_address},
            intended_start=intended,
            label=label,
        )
        if intended is not None:
            runtime.open_model.done(intended, started, time.time())
        return verdict

    def login(self, user: SeedUser, category: str) -> Verdict:
        login = self.api.op("login")
        verdict = self.send(
            "login",
            {"email": user.email, "password": self.seed.password},
            category=category,
            expects=login.success(),
            send_credentials=False,
        )
        if verdict.ok:
            assert login.token_field is not None  # the parser requires it
            self.token = str(field_value(verdict.data, login.token_field))
            lifetime = (
                field_value(verdict.data, login.expires_in_field)
                if login.expires_in_field
                else None
            )
            self.token_expires = time.time() + float(lifetime or self.api.token_lifetime_s)
        return verdict

    def ensure_token(self) -> bool:
        """Log in (category setup) when there is no token or it is about to expire."""
        if self.token is None or time.time() > self.token_expires - TOKEN_MARGIN_S:
            self.token = None
            self.login(self.account, "setup")
        return self.token is not None


class TokenAuthUser(VelroUser):
    """Authentication: the check of a signed-in caller (operation `me`)."""

    category = "authentication"
    needs_token = True

    @task
    def who_am_i(self) -> None:
        if self.ensure_token():
            self.send("me", expects=self.api.op("me").success(same_id=self.account.id or None))


class AuthorizationUser(VelroUser):
    """Authorization: `authz_check` and `project_read` over own, shared, team-shared and
    others' projects (those the backend has)."""

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
        tasks = {"check": "authz_check", "project": "project_read"}
        self.kinds = {
            kind: weight
            for kind, weight in workload.authz_tasks.items()
            if weight and self.api.has(tasks[kind])
        }

    def _pick(self, kind: str) -> tuple[str, str] | None:
        workload = runtime.workload
        assert workload is not None
        read = self.api.operations.get("project_read")
        denials = read is not None and read.outcome("denied") is not None
        relations = [
            name
            for name in workload.relations
            if workload.relations[name]
            and self.projects[name]
            # a denial the API file does not describe cannot be expected
            and not (name == "denied" and kind == "project" and not denials)
        ]
        if not relations:
            return None
        relation = random.choices(relations, [workload.relations[name] for name in relations])[0]
        return relation, random.choice(self.projects[relation])

    @task
    def decide(self) -> None:
        if not self.kinds:
            return
        kind = random.choices(list(self.kinds), list(self.kinds.values()))[0]
        picked = self._pick(kind)
        if picked is None or not self.ensure_token():
            return
        relation, project = picked
        if kind == "project":
            read = self.api.op("project_read")
            denied = read.outcome("denied")
            expects = (
                [denied.expect()]
                if relation == "denied" and denied is not None
                else read.success(same_id=project)
            )
            self.send("project_read", {"project_id": project}, expects=expects)
            return
        # read: decided by the seed for every relation; write/delete: certain only for own
        action = random.choice(("read", "read", "write", "delete")) if relation == "own" else "read"
        self.send(
            "authz_check",
            {"project_id": project, "action": action},
            expects=self.api.op("authz_check").success(allowed=relation != "denied"),
        )


class LoginUser(VelroUser):
    """Login: the operation `login` with the right password (one password hash check)."""

    category = "login"

    @task
    def log_in(self) -> None:
        self.login(self.account, "login")


class RegistrationUser(VelroUser):
    """Registration: the operation `register` with emails unique across worker processes."""

    category = "registration"

    @task
    def register(self) -> None:
        email = identity.email()
        self.send(
            "register",
            {"email": email, "password": self.seed.password, "name": "Velro perf"},
            expects=self.api.op("register").success(same_email=email),
            send_credentials=False,
        )


class ServiceKeyUser(VelroUser):
    """Service keys: the operation `service_user` with the backend's service-key header."""

    category = "service_key"

    @task
    def lookup(self) -> None:
        key = self.seed.service_key
        if not key:
            _retire("service-key users have no service key (the seed has none)")
        user = random.choice(self.seed.users)
        self.send(
            "service_user",
            {"user_id": user.id},
            expects=self.api.op("service_user").success(same_id=user.id),
        )


class AbuseUser(VelroUser):
    """Abuse: wrong passwords (until the backend's rate limit answers, where it promises
    one); missing, malformed, tampered and `alg: none` tokens; a wrong service key. Every
    refusal the API file promises is a success.

    Abuse requests carry their own names (`... [wrong password]`) so Locust's table and the
    budgets' endpoint lists never mix them with the real calls."""

    category = "abuse"
    needs_token = True

    def prepare(self) -> None:
        self.available = set(self.api.abuse_tasks())
        self.victim = ""
        # when each wrong password of the current streak was refused
        self.refused_at: collections.deque[float] = collections.deque()
        if "wrong_password" not in self.available:
            return
        # a victim account of its own: locking it out never touches the seeded users
        self.victim = identity.email("abuse")
        verdict = self.send(
            "register",
            {"email": self.victim, "password": self.seed.password, "name": "Velro abuse"},
            category="setup",
            expects=self.api.op("register").success(same_email=self.victim),
            send_credentials=False,
        )
        if not verdict.ok:
            _retire(f"abuse users could not register their victim account: {verdict.message}")

    @task(2)
    def wrong_password(self) -> None:
        if "wrong_password" not in self.available:
            return
        workload = runtime.workload
        assert workload is not None
        login = self.api.op("login")
        refused = login.outcome("wrong_password")
        limit = login.outcome("rate_limited")
        assert refused is not None
        if limit is None:
            # a backend that never rate-limits: every wrong password is refused the same way
            expects = [refused.expect()]
        else:
            # Up to the limit a refusal is the right answer; past it only the rate limit is.
            # The limit is a rate ("10 a minute"): only the refusals of the last window
            # count, so a server slowed down by the load, whose refusals come further apart,
            # is not blamed for them.
            now = time.monotonic()
            while self.refused_at and now - self.refused_at[0] > LIMIT_WINDOW_S:
                self.refused_at.popleft()
            after = login.after or workload.max_wrong_passwords
            expects = (
                [refused.expect(), limit.expect()]
                if len(self.refused_at) < after
                else [limit.expect()]
            )
        verdict = self.send(
            "login",
            {"email": self.victim, "password": "wrong-password-1"},
            suffix=" [wrong password]",
            expects=expects,
            send_credentials=False,
        )
        if (
            verdict.expect is not None
            and limit is not None
            and verdict.expect.status == limit.status
        ):
            self.refused_at.clear()
        elif verdict.expect is not None:
            self.refused_at.append(time.monotonic())

    @task(2)
    def bad_bearer(self) -> None:
        if "bad_token" not in self.available or not self.ensure_token():
            return
        assert self.token is not None
        # tampering needs a JWT's three parts; an opaque token is only sent missing or mangled
        kinds = BAD_TOKEN_KINDS if self.token.count(".") == 2 else BAD_TOKEN_KINDS[:2]
        kind = random.choice(kinds)
        bad = bad_token(kind, self.token)
        outcome = self.api.op("me").outcome("bad_token")
        assert outcome is not None
        self.send(
            "me",
            token=bad or "",
            send_credentials=bad is not None,
            suffix=" [bad token]",
            expects=[outcome.expect()],
            label=f"{kind} token",
        )

    @task(1)
    def bad_service_key(self) -> None:
        if "bad_key" not in self.available:
            return
        user = random.choice(self.seed.users)
        outcome = self.api.op("service_user").outcome("bad_key")
        assert outcome is not None
        self.send(
            "service_user",
            {"user_id": user.id},
            service_key=f"not-a-key-{identity.tag}",
            suffix=" [bad key]",
            expects=[outcome.expect()],
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

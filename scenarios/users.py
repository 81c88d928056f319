"""The simulated users, one class per kind of traffic (the categories of samples.csv).

Each logs in once in on_start when it needs a token (category `setup`), then repeats its
task with a randomised wait (`between` the shape's wait range): fixed pacing with a fast
spawn makes synchronised bursts. In the open model the wait is instead the time to the next
slot of the schedule (scenarios/openmodel.py).
"""

from __future__ import annotations

from locust import User, task
from locust.exception import StopTest
from locust.runners import STATE_RUNNING, STATE_SPAWNING

import collections
import functools
import random
import time
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import gevent
import gevent.lock

from velro_perf.scenarios.api import BackendApi, Issued
from velro_perf.scenarios.checks import Checked
from velro_perf.scenarios.http import UNSLOTTED, Channel, Transport
from velro_perf.scenarios.runtime import Runtime, SeedSource
from velro_perf.scenarios.seed import SeedUser
from velro_perf.scenarios.tokens import BAD_TOKEN_KINDS, bad_token

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

U = TypeVar("U", bound="VelroUser")
SEED_WAIT_S = 300.0
# the window of the failed-login limit the abuse user probes (the contract's "a minute")
LIMIT_WINDOW_S = 60.0
# renew a token this long before it expires (a quarter of a shorter lifetime), so a soak
# never sends an expired one
TOKEN_MARGIN_S = 30.0
# the samples.csv category of the refreshes a user makes to keep its session: judged (the
# refresh budget), and never the measured request of an open-model slot (http.UNSLOTTED)
REFRESH_CATEGORY = "refresh"
assert REFRESH_CATEGORY in UNSLOTTED
# Locust starts floor(spawn_rate) users at once every floor(spawn_rate)/spawn_rate seconds
# (about 1 s; locust/dispatch.py), and each signs in as it starts: a ramp of 20 users a
# second is a burst of 20 argon2id hashes each second, which a service's sign-in queue bound
# rightly refuses and no real population makes. A user started by a running test waits a
# random part of the interval first, as arrivals of that rate would.
ARRIVAL_SPREAD_S = 1.0
# gevent's libev loop waits in epoll_wait, whose timeout is whole milliseconds rounded up: a
# timer fires about 0.9 ms after it was due (p50 of 200 sleeps here), which the open model
# would count as latency from the intended start. A user wakes this much before its slot; a
# request that starts early is timed from its actual start (scenarios/http.py), so the
# schedule keeps to within a millisecond either way and no wake-up lag is charged.
TIMER_EARLY_S = 0.001


def velro_task(weight: int = 1) -> Callable[[Callable[[U], None]], Callable[[U], None]]:
    """Locust's @task, and in the open model the task runs in a slot greenlet of its own
    (VelroUser.dispatch) instead of in the user's, so the user keeps the schedule."""

    def decorate(body: Callable[[U], None]) -> Callable[[U], None]:
        @functools.wraps(body)
        def run(user: U) -> None:
            if user.velro.open_model.active:
                user.dispatch(body)
            else:
                body(user)

        return task(weight)(run)

    return decorate


class VelroUser(User):
    """Shared plumbing: the Environment's runtime, seed access, login, open-model pacing.

    What a user sends is said through `self.api` (scenarios/api.py), never here; how it is
    sent, by `self.client`, a keep-alive Transport of its own (scenarios/http.py)."""

    abstract = True
    category: ClassVar[str] = ""
    needs_token: ClassVar[bool] = False

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        if self.host is None:
            raise StopTest("no host: give --host (the target's base URL) or set the class's host")
        self.velro = Runtime.of(environment)
        # the open model runs a user's slots concurrently, each on a connection of its own
        options = self.velro.options
        concurrency = options.open_max_in_flight if options.open_rate else 1
        self.client = Transport(self.host, environment.events.request, concurrency=concurrency)
        # Every simulated user comes from 127.0.0.1; its own X-Forwarded-For address (which a
        # server behind a trusted proxy, uvicorn's default for loopback, takes as the client
        # address) keeps one abusive user's failed logins from rate-limiting all the others
        # by address, as it would not in production.
        self.channel = Channel(
            self.client,
            self.velro.recorder,
            self.velro.identity,
            category=self.category,
            headers={"X-Forwarded-For": self.velro.identity.client_address()},
            open_model=self.velro.open_model,
        )
        self.api = BackendApi(self.channel, self.velro.api)
        self.token: str | None = None
        self.token_expires = 0.0
        self.token_margin_s = TOKEN_MARGIN_S
        # the session's refresh token (rotated at each refresh), where the backend has one
        self.refresh_token: str | None = None
        self.renewing = gevent.lock.BoundedSemaphore(1)
        self.sign_in_after = 0.0  # a refused sign-in's Retry-After, honoured
        self.next_slot = 0.0

    def wait_time(self) -> float:
        open_model = self.velro.open_model
        if open_model.active:
            self.next_slot = open_model.claim()
            return max(0.0, self.next_slot - time.time() - TIMER_EARLY_S)
        return self.velro.wait_s()

    def dispatch(self, body: Callable[[Any], None]) -> None:
        """Run one slot's task in the process's pool of in-flight requests. A full pool
        blocks this user (its next slots start late, and are counted late)."""
        slot = self.next_slot

        def run() -> None:
            self.channel.slot.value = slot
            body(self)

        self.velro.in_flight.run(run)

    def on_start(self) -> None:
        runner = self.environment.runner
        # a batch's users run on_start once the batch is spawned: the runner may already say
        # running (a runner that was never started, as in-process tests build, says init)
        if runner is not None and runner.state in (STATE_SPAWNING, STATE_RUNNING):
            gevent.sleep(random.uniform(0.0, ARRIVAL_SPREAD_S))
        source = self.velro.seeds.wait(SEED_WAIT_S)
        if source is None:
            self.velro.retire("no seed: see the fixtures or provisioning error logged before")
        self.seeds: SeedSource = source
        self.account: SeedUser = source.next_user()
        # a users file gives each user a password of its own; a provisioned seed one for all
        self.password = self.account.password or source.seed.password
        self.prepare()
        if self.needs_token:
            self.ensure_token()
        if self.velro.open_model.active:
            # the first slot is claimed by the first wait: Locust runs a task, then waits
            gevent.sleep(self.wait_time())

    def prepare(self) -> None:
        """Per-class setup before the first task."""

    def login(self, user: SeedUser, category: str) -> Checked:
        checked = self.api.login(user.email, self.password, category=category)
        issued = self.api.token_of(checked)
        if issued is not None:
            self.hold(issued)
        elif checked.retry_after_s is not None:
            # as a well-behaved client does: not before Retry-After, spread over up to twice
            # it, so refused users do not come back together
            self.sign_in_after = time.time() + checked.retry_after_s * random.uniform(1.0, 2.0)
        return checked

    def hold(self, issued: Issued) -> None:
        self.token = issued.token
        self.token_expires = time.time() + issued.lifetime_s
        self.token_margin_s = min(TOKEN_MARGIN_S, issued.lifetime_s / 4)
        self.refresh_token = issued.refresh_token

    def renew(self) -> bool:
        """The refresh-token grant for this session's token (category `refresh`, judged);
        False when the backend has none or refused it (the user then logs in again)."""
        if self.refresh_token is None or not self.api.described.refreshes:
            return False
        checked = self.api.refresh(self.refresh_token, category=REFRESH_CATEGORY)
        issued = self.api.token_of(checked, "refresh")
        if issued is None:
            self.refresh_token = None
            return False
        self.hold(issued)
        return True

    def ensure_token(self) -> str | None:
        """The bearer token: renewed through the API file's `refresh` when it is about to
        expire, else after a login (category setup) when there is none or it could not be
        renewed; None when that login failed or was refused with a Retry-After that has not
        passed (the task then sends nothing)."""
        if self._expiring():
            # in the open model a user's slots run at once: one renews, the others wait for
            # its token (two refreshes of one refresh token would be a reuse, and revoke it)
            with self.renewing:
                if self._expiring() and (self.token is None or not self.renew()):
                    self.token = None
                    if time.time() >= self.sign_in_after:
                        self.login(self.account, "setup")
        return self.token

    def _expiring(self) -> bool:
        return self.token is None or time.time() > self.token_expires - self.token_margin_s


class TokenAuthUser(VelroUser):
    """Authentication: the check of a signed-in caller, `GET /auth/me`."""

    category = "authentication"
    needs_token = True

    @velro_task()
    def who_am_i(self) -> None:
        token = self.ensure_token()
        if token is not None:
            self.api.me(token, self.account.id)


class AuthorizationUser(VelroUser):
    """Authorization: `GET /authz/check` and `GET /projects/{id}` over own, shared,
    team-shared and others' projects."""

    category = "authorization"
    needs_token = True

    def prepare(self) -> None:
        # People come back to the few projects they work on; a uniform draw over every
        # project they can see would make each request a first visit, which no cache (and no
        # real workload) sees.
        workload = self.velro.workload
        self.projects = {
            name: random.sample(
                self.account.projects(name),
                min(workload.working_set, len(self.account.projects(name))),
            )
            for name in workload.relations
        }
        self.relations = [
            name for name in workload.relations if workload.relations[name] and self.projects[name]
        ]
        self.relation_weights = [workload.relations[name] for name in self.relations]
        # the kinds of decision the backend has: `check` an authz_check, `project` a read
        has = {"check": self.api.has("authz_check"), "project": self.api.has("project_read")}
        kinds = {k: w for k, w in workload.authz_tasks.items() if w and has[k]}
        self.kinds = list(kinds)
        self.kind_weights = list(kinds.values())

    @velro_task()
    def decide(self) -> None:
        if not self.relations or not self.kinds:
            return
        token = self.ensure_token()
        if token is None:
            return
        relation = random.choices(self.relations, self.relation_weights)[0]
        project = random.choice(self.projects[relation])
        kind = random.choices(self.kinds, self.kind_weights)[0]
        if kind == "project":
            self.api.read_project(token, project, readable=relation != "denied")
            return
        # read: decided by the seed for every relation; write/delete: certain only for own
        action = random.choice(("read", "read", "write", "delete")) if relation == "own" else "read"
        self.api.check(token, project, action, allowed=relation != "denied")


class LoginUser(VelroUser):
    """Login: `POST /auth/login` with the right password (one argon2id verification)."""

    category = "login"

    @velro_task()
    def log_in(self) -> None:
        self.login(self.account, "login")


class RegistrationUser(VelroUser):
    """Registration: `POST /auth/register` with emails unique across worker processes."""

    category = "registration"

    @velro_task()
    def register(self) -> None:
        self.api.register(self.velro.identity.email(), self.password)


class ServiceKeyUser(VelroUser):
    """Services: `GET /internal/users/{id}` with `X-Service-Key`, or, where the API file says
    so (`service_user.auth = "client_token"`), with the token the service gets by the OAuth2
    client-credentials grant, asked for again before it expires (category setup)."""

    category = "service_key"

    def prepare(self) -> None:
        self.by_grant = self.api.described.service_by_grant
        self.key = self.seeds.seed.service_key or ""
        if not self.by_grant and not self.key:
            self.velro.retire("service-key users have no service key (the seed has none)")
        self.users = [user for user in self.seeds.seed.users if user.id]
        if not self.users:
            self.velro.retire("service users have no user ids to look up (the users file has none)")

    def service_token(self) -> str | None:
        if self.token is None or time.time() > self.token_expires - self.token_margin_s:
            self.token = None
            issued = self.api.token_of(self.api.client_token(category="setup"), "client_token")
            if issued is not None:
                self.hold(issued)
        return self.token

    @velro_task()
    def lookup(self) -> None:
        credential = self.service_token() if self.by_grant else self.key
        if credential:
            self.api.internal_user(credential, random.choice(self.users).id)


class AbuseUser(VelroUser):
    """Abuse: wrong passwords until 429 with Retry-After; missing, malformed, tampered and
    `alg: none` tokens; a wrong service key; a consumed refresh token replayed, then the
    newest token of its family. Every refusal the API file describes is a success.
    """

    category = "abuse"
    needs_token = True

    def prepare(self) -> None:
        # the refusals this backend's API file describes (ApiFile.abuse_tasks)
        self.probes = set(self.api.described.abuse_tasks())
        # when each wrong password of the current streak was refused
        self.refused_at: collections.deque[float] = collections.deque()
        self.victim = ""
        if "wrong_password" not in self.probes:
            return
        # a victim account of its own: locking it out never touches the seeded users
        self.victim = self.velro.identity.email("abuse")
        verdict = self.api.register(self.victim, self.password, category="setup")
        if not verdict.ok:
            self.velro.retire(
                f"abuse users could not register their victim account: {verdict.message}"
            )

    @velro_task(2)
    def wrong_password(self) -> None:
        if "wrong_password" not in self.probes:
            return
        login = self.api.described.op("login")
        limit = login.outcome("rate_limited")
        # Up to the limit a 401 is the right answer; past it only a 429 is. The limit is a
        # rate ("10 a minute"): only the refusals of the last window count, so a server slowed
        # down by the load, whose 401s come further apart, is not blamed for them.
        now = time.monotonic()
        while self.refused_at and now - self.refused_at[0] > LIMIT_WINDOW_S:
            self.refused_at.popleft()
        after = login.after or self.velro.workload.max_wrong_passwords
        verdict = self.api.wrong_password(self.victim, may_refuse=len(self.refused_at) < after)
        answered = verdict.expect.status if verdict.expect is not None else None
        if limit is not None and answered in limit.statuses():
            self.refused_at.clear()
        elif verdict.expect is not None:
            self.refused_at.append(now)

    @velro_task(2)
    def bad_bearer(self) -> None:
        if "bad_token" not in self.probes:
            return
        token = self.ensure_token()
        if token is None:
            return
        # tampering needs a JWT's three parts; an opaque token is sent missing or mangled only
        kind = random.choice(BAD_TOKEN_KINDS if token.count(".") == 2 else BAD_TOKEN_KINDS[:2])
        self.api.bad_bearer(bad_token(kind, token), kind)

    @velro_task(1)
    def replay_refresh(self) -> None:
        """A session of its own (log in, refresh once), then the consumed refresh token sent
        again: refused, and its family revoked, so the newest token is refused too."""
        if "refresh_replay" not in self.probes or time.time() < self.sign_in_after:
            return
        # its own requests, named apart: a probe's sign-in is not a user signing in again
        probe = " [replay probe]"
        issued = self.api.token_of(self.api.login(self.account.email, self.password, suffix=probe))
        if issued is None or issued.refresh_token is None:
            return
        first = issued.refresh_token
        rotated = self.api.token_of(self.api.refresh(first, suffix=probe), "refresh")
        if rotated is None or rotated.refresh_token is None:
            return
        self.api.refresh_refused(first, "consumed refresh token")
        self.api.refresh_refused(rotated.refresh_token, "refresh token of a revoked family")

    @velro_task(1)
    def bad_service_key(self) -> None:
        if "bad_key" not in self.probes:
            return
        user = random.choice(self.seeds.seed.users)
        self.api.bad_service_key(f"not-a-key-{self.velro.identity.tag}", user.id)


# category -> user class; the workload file's [users] keys
USER_CLASSES: dict[str, type[VelroUser]] = {
    "authentication": TokenAuthUser,
    "authorization": AuthorizationUser,
    "login": LoginUser,
    "registration": RegistrationUser,
    "service_key": ServiceKeyUser,
    "abuse": AbuseUser,
}

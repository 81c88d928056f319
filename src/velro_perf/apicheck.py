"""`velro-perf api check FILE --target URL`: each operation of an API file, tried once.

Before anyone runs a load, this says which described operations the backend really answers
as the file says: with two users it creates (an owner and another user), or two of a users
file, it signs up, logs in, refreshes, checks the caller (or introspects the token), creates
a resource and reads it as its owner and as the other user, asks for a missing one, shares it
where the backend can, gets a service's token by the client-credentials grant, and provokes
each described refusal (a wrong password, each kind of bad token, a wrong service key, the
rate limit, a replayed refresh token). Every line names the operation, the request sent,
what was expected and what came. The requests are built, sent and judged by the Locust
users' own code (scenarios.api.BackendApi, scenarios.checks); only the transport is httpx.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

import httpx

from velro_perf.errors import EXIT_FAIL, EXIT_PASS, ConfigError, TargetUnreachableError
from velro_perf.scenarios.api import BackendApi, Issued
from velro_perf.scenarios.apifile import load_api
from velro_perf.scenarios.apimodel import ApiFile, Call, OperationKey, Prepared
from velro_perf.scenarios.checks import Checked, describe_all, verify
from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.identity import IdentitySource
from velro_perf.scenarios.seed import SeedUser
from velro_perf.scenarios.tokens import bad_token
from velro_perf.scenarios.usersfile import load_users_file

__all__ = ["Step", "check_api", "run_api_check"]

# one source of unique emails and request ids for the whole check
identity = IdentitySource()

# What an OAuth2 error code (RFC 6749 section 5.2) most often means in an API file, said
# beside the answer so the line names the fix.
OAUTH2_HINTS = {
    "invalid_client": "the provider does not accept the client: check [client] id and secret",
    "unsupported_grant_type": "the provider serves no such grant: check the grant_type field",
    "unauthorized_client": "this client may not use this grant: check the grant_type field "
    "and the client's allowed grant",
    "invalid_grant": "the provider refused the credentials or refresh token sent",
    "invalid_scope": "the provider refused the scope field",
}


@dataclass(frozen=True)
class Step:
    """One tried operation: what was sent, what was expected and what came."""

    operation: str
    what: str
    request: Prepared | None
    expected: str
    got: str
    ok: bool | None  # None: skipped, with the reason in `got`

    def line(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[self.ok]
        head = f"{mark} {self.operation} ({self.what})"
        if self.ok is None or self.request is None:
            return f"{head}: {self.got}"
        if self.ok:
            return f"{head}: {self.request.method} {self.request.path} -> {self.got}"
        return (
            f"{head}\n       sent     {self.request.describe()}\n       expected {self.expected}"
            f"\n       got      {self.got}"
        )


class _Sender:
    """A Sender (scenarios.api) over httpx that records each exchange as a Step of the
    operation and purpose the checker names before sending."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.steps: list[Step] = []
        self.operation = ""
        self.what = ""
        self.quiet = False  # sent but not recorded (the rate limit's run-up)

    def send(self, call: Call) -> Checked:
        prepared, expects = call.prepared, call.expects
        request_id = identity.request_id()
        try:
            response = self.client.request(
                prepared.method,
                prepared.path,
                headers={"X-Request-ID": request_id, **prepared.headers},
                json=prepared.json,
                content=prepared.data,
            )
        except httpx.HTTPError as exc:
            checked = verify(0, None, None, request_id, expects, call.promises)
            got = f"no response ({type(exc).__name__}: {exc})"
        else:
            checked = verify(
                response.status_code,
                response.headers,
                response.content,
                request_id,
                expects,
                call.promises,
            )
            got = f"{response.status_code}: as described" if checked.ok else checked.message
            code = _oauth2_error(response)
            if not checked.ok and code in OAUTH2_HINTS:
                got += f"; {OAUTH2_HINTS[code]}"
        if not self.quiet:
            self.steps.append(
                Step(self.operation, self.what, prepared, describe_all(expects), got, checked.ok)
            )
        return checked


def _oauth2_error(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, str) else None


class _Checker:
    def __init__(self, api: ApiFile, client: httpx.Client, service_key: str | None) -> None:
        self.sender = _Sender(client)
        self.backend = BackendApi(self.sender, api)
        self.api = api
        self.service_key = service_key

    @property
    def steps(self) -> list[Step]:
        return self.sender.steps

    def skip(self, key: OperationKey, what: str, reason: str | None = None) -> None:
        """A step not tried: ``reason``, else why the API file has the operation off."""
        reason = self.api.reason_off(key) if reason is None else reason
        self.steps.append(Step(key, what, None, "", reason, None))

    def step(
        self, key: OperationKey, what: str, call: Callable[[BackendApi], Checked]
    ) -> Checked | None:
        """One call of the backend through BackendApi, recorded as a step of `key`; None when
        the file does not describe the operation."""
        if not self.api.has(key):
            self.skip(key, what)
            return None
        self.sender.operation, self.sender.what = key, what
        return call(self.backend)


def _ok(checked: Checked | None) -> Checked | None:
    return checked if checked is not None and checked.ok else None


@dataclass
class _Who:
    """A user the check signs in as: created by it or from a users file."""

    role: str
    email: str
    password: str
    id: str | None = None
    issued: Issued | None = None

    @property
    def token(self) -> str | None:
        return self.issued.token if self.issued else None


def check_api(
    api: ApiFile,
    client: httpx.Client,
    service_key: str | None = None,
    users: Sequence[SeedUser] = (),
) -> list[Step]:
    """Try every operation of `api` once against `client`'s base URL; the steps, in order.
    `users`: two or more existing users to sign in as (a users file) instead of new ones."""
    c = _Checker(api, client, service_key)
    people = _people(c, users)
    owner, other = people
    _session(c, owner)
    _resources(c, owner, other)
    _services(c, owner)
    _refusals(c, owner)
    c.step("logout", "log the owner out", lambda b: b.logout(owner.token or ""))
    return c.steps


def _people(c: _Checker, users: Sequence[SeedUser]) -> tuple[_Who, _Who]:
    """The owner and the other user, signed up (or taken from `users`) and logged in."""
    password = f"Vc-{secrets.token_urlsafe(12)}"
    if users:
        people = [
            _Who(role, user.email, user.password, user.id or None)
            for role, user in zip(("owner", "other user"), users, strict=False)
        ]
    else:
        people = [_Who(role, identity.email("check"), password) for role in ("owner", "other user")]
    for who in people:
        _sign_in(c, who, from_file=bool(users))
    return people[0], people[1]


def _sign_in(c: _Checker, who: _Who, *, from_file: bool) -> None:
    if from_file:
        c.skip("register", f"sign up the {who.role}", "the users file's users exist already")
    elif c.api.has("register"):
        done = c.step(
            "register",
            f"sign up the {who.role}",
            lambda b: b.register(who.email, who.password, full_name="Velro check"),
        )
        who.id = c.backend.id_of("register", done) if done is not None and done.ok else None
    else:
        c.skip("register", f"sign up the {who.role}")
    done = c.step("login", f"log the {who.role} in", lambda b: b.login(who.email, who.password))
    who.issued = c.backend.token_of(done) if done is not None else None


def _bad_token(c: _Checker, token: str, kind: str, expecting: str) -> None:
    c.step(
        "me",
        f"a bad token ({kind}), expecting {expecting}",
        lambda b: b.bad_bearer(bad_token(kind, token), kind),
    )


def _session(c: _Checker, owner: _Who) -> None:
    """The caller's check (or introspection) and the refresh grant with its rotation."""
    token = owner.token
    if token is None:
        c.skip("me", "the signed-in caller", "needs a token: login did not work")
    else:
        c.step("me", "the signed-in caller", lambda b: b.me(token, owner.id or ""))
    refusal = c.api.op("me").outcome("bad_token") if c.api.has("me") else None
    if refusal is not None:
        # tampering needs a JWT's three parts; missing and malformed need no good token
        jwt = token is not None and token.count(".") == 2
        for kind in ("malformed", "missing", *(("tampered", "alg_none") if jwt else ())):
            _bad_token(c, token or "", kind, refusal.describe(kind))
    if not c.api.has("refresh"):
        c.skip("refresh", "refresh the owner's token")
        return
    first = owner.issued.refresh_token if owner.issued else None
    if first is None:
        c.skip("refresh", "refresh the owner's token", "needs a refresh token: login did not work")
        return
    # c.step answers None only for an operation the file lacks; refresh is there
    done = c.step("refresh", "refresh the owner's token", lambda b: b.refresh(first))
    rotated = c.backend.token_of(done, "refresh") if done is not None else None
    if rotated is None:
        return
    owner.issued = rotated
    if c.api.has("me"):
        c.step("me", "the refreshed token", lambda b: b.me(rotated.token, owner.id or ""))
    if c.api.op("refresh").outcome("revoked") is None:
        c.skip("refresh", "a replayed refresh token", "no revoked answer is described")
        return
    c.step("refresh", "the consumed refresh token again", lambda b: b.refresh_refused(first, ""))
    newest = rotated.refresh_token
    if newest:
        c.step(
            "refresh",
            "the family's newest token, revoked by the reuse",
            lambda b: b.refresh_refused(newest, ""),
        )


def _resources(c: _Checker, owner: _Who, other: _Who) -> None:
    if not c.api.has("project_create"):
        c.skip("project_create", "create a resource")
        return
    if owner.token is None or other.token is None:
        c.skip("project_create", "create a resource", "needs two signed-in users: login failed")
        return
    mine, theirs = owner.token, other.token
    made = _ok(
        c.step(
            "project_create",
            "create a resource as the owner",
            lambda b: b.create_project(mine, "check"),
        )
    )
    project = c.backend.id_of("project_create", made) if made else None
    if not project:
        c.skip("project_read", "read the resource", "needs a resource: project_create failed")
        return
    if c.api.has("project_read"):
        read = c.api.op("project_read")
        c.step(
            "project_read",
            "read as its owner",
            lambda b: b.read_project(mine, project, readable=True),
        )
        if read.outcome("denied") is not None:
            c.step(
                "project_read",
                "read as another user",
                lambda b: b.read_project(theirs, project, readable=False),
            )
        else:
            c.skip("project_read", "read as another user", "no denied status is described")
        if read.outcome("not_found") is not None:
            absent = str(uuid.uuid4())
            c.step(
                "project_read",
                "read one that does not exist",
                lambda b: b.read_missing(mine, absent),
            )
    else:
        c.skip("project_read", "read the resource")
    if c.api.has("authz_check"):
        c.step(
            "authz_check",
            "the owner may read",
            lambda b: b.check(mine, project, "read", allowed=True),
        )
        c.step(
            "authz_check",
            "another user may not",
            lambda b: b.check(theirs, project, "read", allowed=False),
        )
    else:
        c.skip("authz_check", "ask for a decision")
    _sharing(c, mine, theirs, other.id, project)


def _sharing(c: _Checker, owner: str, other: str, other_id: str | None, project: str) -> None:
    """Grants and teams, where the backend has them: the other user may then read."""
    api = c.api
    if api.has("grant_user") and other_id:
        c.step(
            "grant_user",
            "share with the other user",
            lambda b: b.grant(owner, project, "user", other_id, "viewer"),
        )
        if api.has("project_read"):
            c.step(
                "project_read",
                "read as the grantee",
                lambda b: b.read_project(other, project, readable=True),
            )
    elif not api.has("grant_user"):
        c.skip("grant_user", "share with a user")
    if api.has("team_create") and other_id:
        made = _ok(c.step("team_create", "create a team", lambda b: b.create_team(owner, "check")))
        team = c.backend.id_of("team_create", made) if made else None
        if team:
            c.step(
                "team_member_add",
                "add the other user",
                lambda b: b.add_member(owner, team, other_id),
            )
            c.step(
                "grant_team",
                "share with the team",
                lambda b: b.grant(owner, project, "team", team, "viewer"),
            )
    elif not api.has("team_create"):
        c.skip("team_create", "create a team")


def _services(c: _Checker, owner: _Who) -> None:
    """A service's token by the client-credentials grant, and the service lookup."""
    issued = None
    if c.api.has("client_token"):
        done = c.step(
            "client_token", "a service's token (client credentials)", lambda b: b.client_token()
        )
        issued = c.backend.token_of(done, "client_token") if done is not None else None
    else:
        c.skip("client_token", "a service's token (client credentials)")
    if not c.api.has("service_user"):
        c.skip("service_user", "look a user up as a service")
        return
    service = c.api.op("service_user")
    credential = issued.token if service.auth == "client_token" and issued else c.service_key
    if not credential:
        why = (
            "needs the client-credentials token: client_token did not work"
            if service.auth == "client_token"
            else "no service key: give --service-key"
        )
        c.skip("service_user", "look a user up", why)
    else:
        user_id = owner.id or str(uuid.uuid4())
        c.step(
            "service_user",
            "look a user up" if owner.id else "look up an id that may not exist",
            lambda b: b.internal_user(credential, user_id, known=owner.id is not None),
        )
    if service.auth == "service_key" and service.outcome("bad_key") is not None:
        c.step(
            "service_user",
            "a wrong service key",
            lambda b: b.bad_service_key("not-a-key", str(uuid.uuid4())),
        )


def _refusals(c: _Checker, owner: _Who) -> None:
    """A wrong password, then the rate limit within `after` wrong passwords."""
    login = c.api.op("login")
    wrong, limit = login.outcome("wrong_password"), login.outcome("rate_limited")
    if wrong is None:
        return
    c.step("login", "a wrong password", lambda b: b.wrong_password(owner.email, may_refuse=True))
    if limit is None:
        return
    # the rate limit must answer within `after` wrong passwords (this account's own)
    after = login.after or 30
    c.sender.quiet = True
    try:
        for _ in range(after):
            checked = c.backend.wrong_password(owner.email, may_refuse=True)
            if not checked.ok or (checked.expect and checked.expect.status in limit.statuses()):
                break
    finally:
        c.sender.quiet = False
    c.step(
        "login",
        f"the rate limit within {after} wrong passwords",
        lambda b: b.wrong_password(owner.email, may_refuse=False),
    )


def run_api_check(
    api_file: str,
    target: str,
    service_key: str | None,
    out: TextIO,
    timeout_s: float = 30.0,
    users_file: str | None = None,
) -> int:
    """The command: exit 0 when every tried operation answers as described, 1 otherwise."""
    try:
        api = load_api(api_file)
        users = (
            load_users_file(users_file, 2, "api check signs in as {n} (an owner and another)")
            if users_file
            else ()
        )
    except ScenarioConfigError as exc:
        raise ConfigError(str(exc)) from None
    out.write(f"{api.name} ({api.source}, sha256 {api.sha256[:12]}) against {target}\n")
    try:
        with httpx.Client(base_url=target, timeout=timeout_s) as client:
            steps = check_api(api, client, service_key, users)
    except httpx.HTTPError as exc:
        raise TargetUnreachableError(f"target {target} stopped answering ({exc})") from exc
    tried = [step for step in steps if step.ok is not None]
    if tried and all(step.got.startswith("no response") for step in tried):
        raise TargetUnreachableError(
            f"target {target} is unreachable; start the backend or check the URL and port"
        )
    for step in steps:
        out.write(step.line() + "\n")
    failed = [step for step in steps if step.ok is False]
    worked = [step for step in steps if step.ok]
    skipped = [step for step in steps if step.ok is None]
    out.write(
        f"{len(worked)} worked, {len(failed)} did not, {len(skipped)} not tried"
        + (": fix the API file or the backend where a line says FAIL\n" if failed else "\n")
    )
    return EXIT_FAIL if failed else EXIT_PASS

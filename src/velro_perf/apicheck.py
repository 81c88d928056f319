"""`velro-perf api check FILE --target URL`: each operation of an API file, tried once.

Before anyone runs a load, this says which described operations the backend really answers
as the file says: with two users it creates (an owner and another user), it signs up, logs
in, checks the caller, creates a resource and reads it as its owner and as the other user,
asks for a missing one, shares it where the backend can, and provokes each described
refusal (a wrong password, a bad token, a wrong service key, the rate limit). Every line
names the operation, the request sent, what was expected and what came. The requests are
built and judged by the same code as the Locust users' (scenarios.api, scenarios.checks).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from scenarios.apifile import load_api
from scenarios.apimodel import ApiFile, Prepared, field_value
from scenarios.checks import Expect, Verdict, verify
from scenarios.errors import ScenarioConfigError
from scenarios.identity import IdentitySource
from velro_perf.errors import EXIT_FAIL, EXIT_PASS, ConfigError, TargetUnreachableError

__all__ = ["Step", "check_api", "run_api_check"]

# one source of unique emails and request ids for the whole check
identity = IdentitySource()
_SECRET_FIELDS = re.compile(r"(password=|'password': ')[^&',}]*")


@dataclass(frozen=True)
class Step:
    """One tried operation: what was sent, what was expected and what came."""

    operation: str
    what: str
    request: str
    expected: str
    got: str
    ok: bool | None  # None: skipped, with the reason in `got`

    def line(self) -> str:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[self.ok]
        head = f"{mark} {self.operation} ({self.what})"
        if self.ok is None:
            return f"{head}: {self.got}"
        if self.ok:
            return f"{head}: {self.request.split(' json ')[0].split(' form ')[0]} -> {self.got}"
        return (
            f"{head}\n       sent     {self.request}\n       expected {self.expected}"
            f"\n       got      {self.got}"
        )


class _Checker:
    def __init__(self, api: ApiFile, client: httpx.Client, service_key: str | None) -> None:
        self.api = api
        self.client = client
        self.service_key = service_key
        self.steps: list[Step] = []

    def skip(self, key: str, what: str, reason: str | None = None) -> None:
        """A step not tried: ``reason``, else why the API file has the operation off."""
        reason = self.api.reason_off(key) if reason is None else reason
        self.steps.append(Step(key, what, "", "", reason, None))

    def succeeds(
        self,
        key: str,
        what: str,
        values: dict[str, str],
        *,
        token: str | None = None,
        send_credentials: bool = True,
        **expected: Any,
    ) -> Verdict | None:
        """``try_`` expecting the operation's success answers (``expected``: its checks)."""
        expects = self.api.op(key).success(**expected)
        return self.try_(key, what, values, expects, token=token, send_credentials=send_credentials)

    def try_(
        self,
        key: str,
        what: str,
        values: dict[str, str],
        expects: Sequence[Expect],
        *,
        token: str | None = None,
        service_key: str | None = None,
        send_credentials: bool = True,
    ) -> Verdict | None:
        """Send one operation and record the step; None when the file does not describe it."""
        if not self.api.has(key):
            self.skip(key, what)
            return None
        prepared = self.api.op(key).prepare(
            values,
            token=token,
            service_key=service_key if service_key is not None else self.service_key,
            send_credentials=send_credentials,
        )
        verdict, got = self._send(prepared, expects)
        wanted = " or ".join(expect.describe() for expect in expects)
        self.steps.append(
            Step(
                key,
                what,
                _SECRET_FIELDS.sub(r"\1***", prepared.describe()),
                wanted,
                got if not verdict.ok else f"{got}: as described",
                verdict.ok,
            )
        )
        return verdict

    def _send(self, prepared: Prepared, expects: Sequence[Expect]) -> tuple[Verdict, str]:
        request_id = identity.request_id()
        headers = {"X-Request-ID": request_id, **prepared.headers}
        try:
            response = self.client.request(
                prepared.method,
                prepared.path,
                headers=headers,
                json=prepared.json,
                content=prepared.data,
            )
        except httpx.HTTPError as exc:
            verdict = verify(0, None, None, request_id, expects, self.api.promises)
            return verdict, f"no response ({type(exc).__name__}: {exc})"
        verdict = verify(
            response.status_code,
            response.headers,
            response.content,
            request_id,
            expects,
            self.api.promises,
        )
        got = str(response.status_code)
        if not verdict.ok:
            got = verdict.message
        return verdict, got


def _field(api: ApiFile, key: str, attribute: str, data: Any) -> str | None:
    name = getattr(api.op(key), attribute)
    value = field_value(data, name) if name else None
    return None if value is None else str(value)


def check_api(api: ApiFile, client: httpx.Client, service_key: str | None = None) -> list[Step]:
    """Try every operation of `api` once against `client`'s base URL; the steps, in order."""
    c = _Checker(api, client, service_key)
    password = f"Vc-{secrets.token_urlsafe(12)}"
    owner_email, other_email = identity.email("check"), identity.email("check")
    ids: dict[str, str | None] = {}
    tokens: dict[str, str | None] = {}
    for who, email in (("owner", owner_email), ("other user", other_email)):
        values = {"email": email, "password": password, "name": "Velro check"}
        if api.has("register"):
            done = c.succeeds(
                "register", f"sign up the {who}", values, same_email=email, send_credentials=False
            )
            ids[who] = _field(api, "register", "id_field", done.data) if done and done.ok else None
        else:
            c.skip("register", f"sign up the {who}")
        done = c.succeeds("login", f"log the {who} in", values, send_credentials=False)
        tokens[who] = (
            _field(api, "login", "token_field", done.data) if done is not None and done.ok else None
        )
    owner, other = tokens["owner"], tokens["other user"]
    if api.has("me"):
        me = api.op("me")
        if owner is None:
            c.skip("me", "the signed-in caller", "needs a token: login did not work")
        else:
            c.succeeds("me", "the signed-in caller", {}, same_id=ids["owner"], token=owner)
        bad = me.outcome("bad_token")
        if bad is not None:
            c.try_("me", "a malformed token", {}, [bad.expect()], token="not-a-jwt")  # noqa: S106 (a bad token on purpose)
            c.try_("me", "no token", {}, [bad.expect()], send_credentials=False)
    else:
        c.skip("me", "the signed-in caller")
    _resources(c, owner, other, ids)
    _refusals(c, owner_email, password)
    if not api.has("logout"):
        c.skip("logout", "log the owner out")
    elif owner is not None:
        c.succeeds("logout", "log the owner out", {}, token=owner)
    return c.steps


def _resources(
    c: _Checker, owner: str | None, other: str | None, ids: dict[str, str | None]
) -> None:
    api = c.api
    if not api.has("project_create"):
        c.skip("project_create", "create a resource")
        return
    if owner is None or other is None:
        c.skip("project_create", "create a resource", "needs two signed-in users: login failed")
        return
    made = c.succeeds(
        "project_create", "create a resource as the owner", {"name": "check"}, token=owner
    )
    project = _field(api, "project_create", "id_field", made.data) if made and made.ok else None
    if project is None:
        c.skip("project_read", "read the resource", "needs a resource: project_create failed")
        return
    values = {"project_id": project, "action": "read"}
    if api.has("project_read"):
        read = api.op("project_read")
        c.succeeds("project_read", "read as its owner", values, same_id=project, token=owner)
        denied, missing = read.outcome("denied"), read.outcome("not_found")
        if denied is not None:
            c.try_("project_read", "read as another user", values, [denied.expect()], token=other)
        else:
            c.skip("project_read", "read as another user", "no denied status is described")
        if missing is not None:
            absent = {"project_id": str(uuid.uuid4())}
            c.try_(
                "project_read",
                "read one that does not exist",
                absent,
                [missing.expect()],
                token=owner,
            )
    else:
        c.skip("project_read", "read the resource")
    if api.has("authz_check"):
        c.succeeds("authz_check", "the owner may read", values, allowed=True, token=owner)
        c.succeeds("authz_check", "another user may not", values, allowed=False, token=other)
    else:
        c.skip("authz_check", "ask for a decision")
    _sharing(c, owner, other, ids.get("other user"), project)


def _sharing(c: _Checker, owner: str, other: str, other_id: str | None, project: str) -> None:
    """Grants and teams, where the backend has them: the other user may then read."""
    api = c.api
    values = {"project_id": project, "action": "read"}
    if api.has("grant_user") and other_id:
        grant = {"project_id": project, "user_id": other_id, "role": "viewer"}
        c.succeeds("grant_user", "share with the other user", grant, token=owner)
        if api.has("project_read"):
            c.succeeds("project_read", "read as the grantee", values, same_id=project, token=other)
    elif not api.has("grant_user"):
        c.skip("grant_user", "share with a user")
    if api.has("team_create") and other_id:
        made = c.succeeds("team_create", "create a team", {"name": "check"}, token=owner)
        team = _field(api, "team_create", "id_field", made.data) if made and made.ok else None
        if team is not None:
            member = {"team_id": team, "user_id": other_id}
            c.succeeds("team_member_add", "add the other user", member, token=owner)
            share = {"project_id": project, "team_id": team, "role": "viewer"}
            c.succeeds("grant_team", "share with the team", share, token=owner)
    elif not api.has("team_create"):
        c.skip("team_create", "create a team")


def _refusals(c: _Checker, email: str, password: str) -> None:
    api = c.api
    login = api.op("login")
    wrong, limit = login.outcome("wrong_password"), login.outcome("rate_limited")
    values = {"email": email, "password": password + "-wrong"}
    if wrong is not None:
        c.try_("login", "a wrong password", values, [wrong.expect()], send_credentials=False)
    if limit is not None and wrong is not None:
        # the rate limit must answer within `after` wrong passwords (this account's own)
        after = login.after or 30
        expects = [wrong.expect(), limit.expect()]
        for _ in range(after):
            prepared = login.prepare(values, send_credentials=False)
            verdict, _got = c._send(prepared, expects)
            if not verdict.ok or (verdict.expect and verdict.expect.status == limit.status):
                break
        c.try_(
            "login", f"the rate limit within {after} wrong passwords", values,
            [limit.expect()], send_credentials=False,
        )  # fmt: skip
    if api.has("service_user"):
        service = api.op("service_user")
        if c.service_key:
            c.try_("service_user", "look a user up with the key", {"user_id": str(uuid.uuid4())},
                   [Expect(404), *service.success()])  # fmt: skip
        else:
            c.skip("service_user", "look a user up", "no service key: give --service-key")
        bad = service.outcome("bad_key")
        if bad is not None:
            c.try_("service_user", "a wrong service key", {"user_id": str(uuid.uuid4())},
                   [bad.expect()], service_key="not-a-key")  # fmt: skip
    else:
        c.skip("service_user", "service-key lookup")


def run_api_check(
    api_file: str, target: str, service_key: str | None, out: TextIO, timeout_s: float = 30.0
) -> int:
    """The command: exit 0 when every tried operation answers as described, 1 otherwise."""
    try:
        api = load_api(api_file)
    except ScenarioConfigError as exc:
        raise ConfigError(str(exc)) from None
    out.write(f"{api.name} ({api.source}, sha256 {api.sha256[:12]}) against {target}\n")
    try:
        with httpx.Client(base_url=target, timeout=timeout_s) as client:
            steps = check_api(api, client, service_key)
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

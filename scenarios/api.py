"""The calls the scenarios make, in one place: each is an operation of the backend's API file
(scenarios/apifile.py, docs/api-file.md), with its method, path, request name, body and the
answers that count as right.

The user classes (scenarios/users.py) decide what a simulated user does and when; provisioning
(scenarios/provision.py) what the seed needs; both say it through a `BackendApi`, which builds
each request from the API file and sends it through a `Channel` (scenarios/http.py). The
contract of CONTRACT.md is `targets/contract.toml`, the first API file, not a special case.
"""

from __future__ import annotations

from collections.abc import Sequence

from scenarios.apimodel import ApiFile, field_value
from scenarios.checks import Expect, Verdict
from scenarios.http import Channel

__all__ = ["BackendApi"]


class BackendApi:
    """One backend's operations over one Channel; every method returns the Verdict."""

    def __init__(self, channel: Channel, described: ApiFile) -> None:
        self.channel = channel
        self.described = described

    def has(self, *operations: str) -> bool:
        return self.described.has(*operations)

    def _send(
        self,
        key: str,
        values: dict[str, str],
        expects: Sequence[Expect],
        *,
        token: str | None = None,
        service_key: str | None = None,
        send_credentials: bool = True,
        suffix: str = "",
        category: str | None = None,
        label: str | None = None,
    ) -> Verdict:
        prepared = self.described.op(key).prepare(
            values, token=token, service_key=service_key, send_credentials=send_credentials
        )
        return self.channel.send(
            prepared.method,
            prepared.path,
            name=prepared.name + suffix,
            category=category,
            json=prepared.json,
            data=prepared.data,
            headers=prepared.headers,
            expects=expects,
            label=label,
            promises=self.described.promises,
        )

    def id_of(self, key: str, verdict: Verdict) -> str:
        """The id the operation's answer carries (its `id` field), or "" when it has none."""
        name = self.described.op(key).id_field
        value = field_value(verdict.data, name) if name else None
        return "" if value is None else str(value)

    def token_of(self, verdict: Verdict) -> tuple[str, float] | None:
        """The token of a successful login and its lifetime in seconds."""
        login = self.described.op("login")
        if not verdict.ok or login.token_field is None:
            return None
        lifetime = (
            field_value(verdict.data, login.expires_in_field) if login.expires_in_field else None
        )
        token = str(field_value(verdict.data, login.token_field))
        return token, float(lifetime or self.described.token_lifetime_s)

    # -- authentication

    def register(
        self,
        email: str,
        password: str,
        *,
        category: str | None = None,
        full_name: str = "Velro perf",
    ) -> Verdict:
        return self._send(
            "register",
            {"email": email, "password": password, "name": full_name},
            self.described.op("register").success(same_email=email),
            send_credentials=False,
            category=category,
        )

    def login(self, email: str, password: str, *, category: str | None = None) -> Verdict:
        """A right password: the success the file describes, with a token."""
        return self._send(
            "login",
            {"email": email, "password": password},
            self.described.op("login").success(),
            send_credentials=False,
            category=category,
        )

    def me(self, token: str, user_id: str) -> Verdict:
        return self._send(
            "me", {}, self.described.op("me").success(same_id=user_id or None), token=token
        )

    # -- authorization

    def read_project(self, token: str, project: str, *, readable: bool) -> Verdict:
        """The resource, or the denial the file describes when the caller may not read it."""
        read = self.described.op("project_read")
        denied = read.outcome("denied")
        expects = read.success(same_id=project) if readable or denied is None else [denied.expect()]
        return self._send("project_read", {"project_id": project}, expects, token=token)

    def check(self, token: str, project: str, action: str, *, allowed: bool) -> Verdict:
        return self._send(
            "authz_check",
            {"project_id": project, "action": action},
            self.described.op("authz_check").success(allowed=allowed),
            token=token,
        )

    # -- service keys

    def internal_user(self, key: str, user_id: str) -> Verdict:
        return self._send(
            "service_user",
            {"user_id": user_id},
            self.described.op("service_user").success(same_id=user_id),
            service_key=key,
        )

    # -- abuse: every refusal the API file promises is a right answer. Abuse requests carry
    # their own names (`... [wrong password]`) so Locust's table and the budgets' endpoint
    # lists never mix them with the real calls.

    def wrong_password(self, email: str, *, may_refuse: bool) -> Verdict:
        """The refusal while the failed-login limit is not reached (`may_refuse`), then only
        the rate limit; a backend that never rate-limits refuses every time."""
        login = self.described.op("login")
        refused, limited = login.outcome("wrong_password"), login.outcome("rate_limited")
        assert refused is not None, "abuse users probe only the refusals the file describes"
        if limited is None:
            expects = [refused.expect()]
        else:
            expects = [refused.expect(), limited.expect()] if may_refuse else [limited.expect()]
        return self._send(
            "login",
            {"email": email, "password": "wrong-password-1"},
            expects,
            send_credentials=False,
            suffix=" [wrong password]",
        )

    def bad_bearer(self, token: str | None, kind: str) -> Verdict:
        """A missing, malformed, tampered or `alg: none` token (None: no credentials)."""
        outcome = self.described.op("me").outcome("bad_token")
        assert outcome is not None, "abuse users probe only the refusals the file describes"
        return self._send(
            "me",
            {},
            [outcome.expect()],
            token=token,
            send_credentials=token is not None,
            suffix=" [bad token]",
            label=f"{kind} token",
        )

    def bad_service_key(self, key: str, user_id: str) -> Verdict:
        outcome = self.described.op("service_user").outcome("bad_key")
        assert outcome is not None, "abuse users probe only the refusals the file describes"
        return self._send(
            "service_user",
            {"user_id": user_id},
            [outcome.expect()],
            service_key=key,
            suffix=" [bad key]",
        )

    # -- what provisioning creates

    def create_team(self, token: str, name: str) -> Verdict:
        op = self.described.op("team_create")
        return self._send("team_create", {"name": name}, op.success(), token=token)

    def add_member(self, token: str, team_id: str, user_id: str) -> Verdict:
        op = self.described.op("team_member_add")
        values = {"team_id": team_id, "user_id": user_id}
        return self._send("team_member_add", values, op.success(), token=token)

    def create_project(self, token: str, name: str) -> Verdict:
        op = self.described.op("project_create")
        return self._send("project_create", {"name": name}, op.success(), token=token)

    def grant(self, token: str, project_id: str, kind: str, subject: str, role: str) -> Verdict:
        key = f"grant_{kind}"
        values = {"project_id": project_id, f"{kind}_id": subject, "role": role}
        return self._send(key, values, self.described.op(key).success(), token=token)

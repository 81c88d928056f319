"""The calls the scenarios make, in one place: each is an operation of the backend's API file
(scenarios/apifile.py, docs/api-file.md), with its method, path, request name, body and the
answers that count as right.

The user classes (scenarios/users.py) decide what a simulated user does and when; provisioning
(scenarios/provision.py) what the seed needs; `velro-perf api check` what to try once; all
say it through a `BackendApi`, which builds each request from the API file and sends it
through a `Sender`: a Locust user's `Channel` (scenarios/http.py), or the check's own.
The contract of CONTRACT.md is `targets/contract.toml`, the first API file, not a special case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from velro_perf.scenarios.apimodel import ApiFile, Call, OperationKey, Refusal, field_value
from velro_perf.scenarios.checks import Checked, Expect

__all__ = ["BackendApi", "Issued", "Sender"]


class Sender(Protocol):
    """Sends a prepared request and judges its answer against `expects`."""

    def send(self, call: Call) -> Checked: ...


@dataclass(frozen=True)
class Issued:
    """A token an operation answered: its lifetime in seconds and, where the backend rotates
    refresh tokens, the refresh token that goes with it."""

    token: str
    lifetime_s: float
    refresh_token: str | None = None


class BackendApi:
    """One backend's operations over one Sender; every method returns the Checked answer."""

    def __init__(self, channel: Sender, described: ApiFile) -> None:
        self.channel = channel
        self.described = described

    def has(self, *operations: OperationKey) -> bool:
        return self.described.has(*operations)

    def _send(
        self,
        key: OperationKey,
        values: dict[str, str],
        expects: Sequence[Expect],
        *,
        token: str | None = None,
        service_key: str | None = None,
        send_credentials: bool = True,
        suffix: str = "",
        category: str | None = None,
        label: str | None = None,
    ) -> Checked:
        op = self.described.op(key)
        prepared = op.prepare(
            values, token=token, service_key=service_key, send_credentials=send_credentials
        )
        return self.channel.send(
            Call(prepared, expects, op.name + suffix, category, label, self.described.promises)
        )

    def _refusal(self, key: OperationKey, outcome: str) -> Refusal:
        """A refusal the API file describes: abuse users probe only those."""
        refusal = self.described.op(key).outcome(outcome)
        assert refusal is not None, "abuse users probe only the refusals the file describes"
        return refusal

    def id_of(self, key: OperationKey, checked: Checked) -> str:
        """The id the operation's answer carries (its `id` field), or "" when it has none."""
        name = self.described.op(key).id_field
        value = field_value(checked.data, name) if name else None
        return "" if value is None else str(value)

    def token_of(self, checked: Checked, key: OperationKey = "login") -> Issued | None:
        """The token of a successful login, refresh or client-credentials grant."""
        op = self.described.op(key)
        if not checked.ok or op.token_field is None:
            return None
        lifetime = field_value(checked.data, op.expires_in_field) if op.expires_in_field else None
        refresh = field_value(checked.data, op.refresh_field) if op.refresh_field else None
        return Issued(
            str(field_value(checked.data, op.token_field)),
            float(lifetime or self.described.token_lifetime_s),
            str(refresh) if refresh else None,
        )

    # -- authentication

    def register(
        self,
        email: str,
        password: str,
        *,
        category: str | None = None,
        full_name: str = "Velro perf",
    ) -> Checked:
        return self._send(
            "register",
            {"email": email, "password": password, "name": full_name},
            self.described.op("register").success(same_email=email),
            send_credentials=False,
            category=category,
        )

    def login(
        self, email: str, password: str, *, category: str | None = None, suffix: str = ""
    ) -> Checked:
        """A right password: the success the file describes, with a token."""
        return self._send(
            "login",
            {"email": email, "password": password},
            self.described.op("login").success(),
            category=category,
            suffix=suffix,
        )

    def refresh(
        self, refresh_token: str, *, category: str | None = None, suffix: str = ""
    ) -> Checked:
        """The refresh-token grant: a new access token and a new refresh token (rotation)."""
        return self._send(
            "refresh",
            {"refresh_token": refresh_token},
            self.described.op("refresh").success(),
            category=category,
            suffix=suffix,
        )

    def refresh_refused(self, refresh_token: str, label: str) -> Checked:
        """A consumed refresh token sent again, or one of a family revoked since: the refusal
        the file describes (reuse detection, RFC 9700 section 4.14.2)."""
        return self._send(
            "refresh",
            {"refresh_token": refresh_token},
            self._refusal("refresh", "revoked").expects(),
            suffix=" [replayed refresh]",
            label=label,
        )

    def client_token(self, *, category: str | None = None) -> Checked:
        """The client-credentials grant: the service's own token."""
        return self._send(
            "client_token", {}, self.described.op("client_token").success(), category=category
        )

    def me(self, token: str, user_id: str) -> Checked:
        return self._send(
            "me", {}, self.described.op("me").success(same_id=user_id or None), token=token
        )

    def logout(self, token: str) -> Checked:
        return self._send("logout", {}, self.described.op("logout").success(), token=token)

    # -- authorization

    def read_project(self, token: str, project: str, *, readable: bool) -> Checked:
        """The resource, or the denial the file describes when the caller may not read it."""
        read = self.described.op("project_read")
        denied = read.outcome("denied")
        expects = read.success(same_id=project) if readable or denied is None else denied.expects()
        return self._send("project_read", {"project_id": project}, expects, token=token)

    def read_missing(self, token: str, project: str) -> Checked:
        """A resource that does not exist: the not-found answer the file describes."""
        missing = self.described.op("project_read").outcome("not_found")
        assert missing is not None, "only a described not-found is probed"
        return self._send("project_read", {"project_id": project}, missing.expects(), token=token)

    def check(self, token: str, project: str, action: str, *, allowed: bool) -> Checked:
        return self._send(
            "authz_check",
            {"project_id": project, "action": action},
            self.described.op("authz_check").success(allowed=allowed),
            token=token,
        )

    # -- services: a service key, or the client-credentials grant's token

    def internal_user(self, credential: str, user_id: str, *, known: bool = True) -> Checked:
        """The user as a service sees it; `known=False`: an id that may not exist (404 too)."""
        op = self.described.op("service_user")
        expects = op.success(same_id=user_id) if known else [Expect(404), *op.success()]
        if op.auth == "client_token":
            return self._send("service_user", {"user_id": user_id}, expects, token=credential)
        return self._send("service_user", {"user_id": user_id}, expects, service_key=credential)

    # -- abuse: every refusal the API file promises is a right answer. Abuse requests carry
    # their own names (`... [wrong password]`) so Locust's table and the budgets' endpoint
    # lists never mix them with the real calls.

    def wrong_password(self, email: str, *, may_refuse: bool) -> Checked:
        """The refusal while the failed-login limit is not reached (`may_refuse`), then only
        the rate limit; a backend that never rate-limits refuses every time."""
        refused = self._refusal("login", "wrong_password")
        limited = self.described.op("login").outcome("rate_limited")
        if limited is None:
            expects = refused.expects()
        elif may_refuse:
            expects = (*refused.expects(), *limited.expects())
        else:
            expects = limited.expects()
        return self._send(
            "login",
            {"email": email, "password": "wrong-password-1"},
            expects,
            suffix=" [wrong password]",
        )

    def bad_bearer(self, token: str | None, kind: str) -> Checked:
        """A missing, malformed, tampered or `alg: none` token (None: no token), answered as
        the file says that kind is answered."""
        me = self.described.op("me")
        return self._send(
            "me",
            {},
            self._refusal("me", "bad_token").expects(kind),
            token=token,
            # introspection sends the token in its body, and its client's credentials anyway
            send_credentials=token is not None or me.token_in_body,
            suffix=" [bad token]",
            label=f"{kind} token",
        )

    def bad_service_key(self, key: str, user_id: str) -> Checked:
        return self._send(
            "service_user",
            {"user_id": user_id},
            self._refusal("service_user", "bad_key").expects(),
            service_key=key,
            suffix=" [bad key]",
        )

    # -- what provisioning creates

    def create_team(self, token: str, name: str) -> Checked:
        op = self.described.op("team_create")
        return self._send("team_create", {"name": name}, op.success(), token=token)

    def add_member(self, token: str, team_id: str, user_id: str) -> Checked:
        op = self.described.op("team_member_add")
        values = {"team_id": team_id, "user_id": user_id}
        return self._send("team_member_add", values, op.success(), token=token)

    def create_project(self, token: str, name: str) -> Checked:
        op = self.described.op("project_create")
        return self._send("project_create", {"name": name}, op.success(), token=token)

    def grant(self, token: str, project_id: str, kind: str, subject: str, role: str) -> Checked:
        key: OperationKey = "grant_team" if kind == "team" else "grant_user"
        values = {"project_id": project_id, f"{kind}_id": subject, "role": role}
        return self._send(key, values, self.described.op(key).success(), token=token)

"""The calls of CONTRACT.md the scenarios make, in one place: for each, its method, path,
request name, body and the answers that count as right.

The user classes (scenarios/users.py) decide what a simulated user does and when; provisioning
(scenarios/provision.py) what the seed needs; both say it through a `ContractApi`, which sends
through a `Channel` (scenarios/http.py). A backend that serves another API changes this layer
only.
"""

from __future__ import annotations

from scenarios.checks import (
    RETRY_AFTER,
    Expect,
    Verdict,
    authz_body,
    project_body,
    team_body,
    token_body,
    user_body,
)
from scenarios.http import Channel

__all__ = ["API", "ContractApi"]

API = "/api/v1"


class ContractApi:
    """CONTRACT.md's operations over one Channel; every method returns the Verdict."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    # -- authentication

    def register(
        self,
        email: str,
        password: str,
        *,
        category: str | None = None,
        full_name: str | None = "Velro perf",
    ) -> Verdict:
        body = {"email": email, "password": password}
        if full_name is not None:
            body["full_name"] = full_name
        return self.channel.send(
            "POST",
            f"{API}/auth/register",
            name=f"{API}/auth/register",
            category=category,
            json=body,
            expects=[Expect(201, body=user_body(email=email))],
        )

    def login(
        self,
        email: str,
        password: str,
        *,
        category: str | None = None,
    ) -> Verdict:
        """A right password: 200 with a bearer token."""
        return self.channel.send(
            "POST",
            f"{API}/auth/login",
            name=f"{API}/auth/login",
            category=category,
            json={"email": email, "password": password},
            expects=[Expect(200, body=token_body)],
        )

    def me(self, token: str, user_id: str) -> Verdict:
        return self.channel.send(
            "GET",
            f"{API}/auth/me",
            name=f"{API}/auth/me",
            token=token,
            expects=[Expect(200, body=user_body(user_id=user_id))],
        )

    # -- authorization

    def read_project(self, token: str, project: str, *, readable: bool) -> Verdict:
        """The project, or 404 when the caller may not read it (no existence oracle)."""
        return self.channel.send(
            "GET",
            f"{API}/projects/{project}",
            name=f"{API}/projects/{{id}}",
            token=token,
            expects=(
                [Expect(200, body=project_body(project))]
                if readable
                else [Expect(404, error="not_found")]
            ),
        )

    def check(
        self,
        token: str,
        project: str,
        action: str,
        *,
        allowed: bool,
    ) -> Verdict:
        return self.channel.send(
            "GET",
            f"{API}/authz/check?resource_id={project}&action={action}",
            name=f"{API}/authz/check",
            token=token,
            expects=[Expect(200, body=authz_body(allowed))],
        )

    # -- service keys

    def internal_user(self, key: str, user_id: str) -> Verdict:
        return self.channel.send(
            "GET",
            f"{API}/internal/users/{user_id}",
            name=f"{API}/internal/users/{{id}}",
            headers={"X-Service-Key": key},
            expects=[Expect(200, body=user_body(user_id=user_id))],
        )

    # -- abuse: every refusal the contract promises is a right answer. Abuse requests carry
    # their own names (`... [wrong password]`) so Locust's table and the budgets' endpoint
    # lists never mix them with the real calls.

    def wrong_password(self, email: str, *, may_refuse: bool) -> Verdict:
        """401 while the failed-login limit is not reached (`may_refuse`), then only 429."""
        limited = Expect(429, error="rate_limited", headers={"Retry-After": RETRY_AFTER})
        refused = Expect(401, error="invalid_credentials")
        return self.channel.send(
            "POST",
            f"{API}/auth/login",
            name=f"{API}/auth/login [wrong password]",
            json={"email": email, "password": "wrong-password-1"},
            expects=[refused, limited] if may_refuse else [limited],
        )

    def bad_bearer(self, token: str | None, kind: str) -> Verdict:
        """A missing, malformed, tampered or `alg: none` token (None: no Authorization)."""
        return self.channel.send(
            "GET",
            f"{API}/auth/me",
            name=f"{API}/auth/me [bad token]",
            token=token,
            expects=[
                Expect(401, error="invalid_token", headers={"WWW-Authenticate": r"^\s*Bearer\b"})
            ],
            label=f"{kind} token",
        )

    def bad_service_key(self, key: str, user_id: str) -> Verdict:
        return self.channel.send(
            "GET",
            f"{API}/internal/users/{user_id}",
            name=f"{API}/internal/users/{{id}} [bad key]",
            headers={"X-Service-Key": key},
            expects=[Expect(401, error="invalid_service_key")],
        )

    # -- what provisioning creates

    def create_team(self, token: str, name: str) -> Verdict:
        return self.channel.send(
            "POST",
            f"{API}/teams",
            name=f"{API}/teams",
            json={"name": name},
            token=token,
            expects=[Expect(201, body=team_body)],
        )

    def add_member(self, token: str, team_id: str, user_id: str) -> Verdict:
        return self.channel.send(
            "PUT",
            f"{API}/teams/{team_id}/members/{user_id}",
            name=f"{API}/teams/{{id}}/members/{{id}}",
            token=token,
            expects=[Expect(204)],
        )

    def create_project(self, token: str, name: str) -> Verdict:
        return self.channel.send(
            "POST",
            f"{API}/projects",
            name=f"{API}/projects",
            json={"name": name},
            token=token,
            expects=[Expect(201, body=project_body())],
        )

    def grant(self, token: str, project_id: str, kind: str, subject: str, role: str) -> Verdict:
        return self.channel.send(
            "PUT",
            f"{API}/projects/{project_id}/grants/{kind}/{subject}",
            name=f"{API}/projects/{{id}}/grants/{kind}/{{id}}",
            json={"role": role},
            token=token,
            expects=[Expect(204)],
        )

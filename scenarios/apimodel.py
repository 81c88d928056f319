"""A backend's API as data (the model of an API file, docs/api-file.md) and the requests it
implies; scenarios/apifile.py reads the file into it.

The scenarios drive operations (`login`, `me`, `project_read`, ...), never paths: an API
file says, for each operation a backend has, its method, path, body, the statuses that mean
success, denial and not-found, and where the token is. `targets/contract.toml` describes
CONTRACT.md and is the default; it is the first API file, not a special case.

Everything here is pure (no I/O but reading the file): `Operation.prepare` builds a request,
`Operation.success` / `Operation.outcome` give the answers a scenario accepts, and both the
Locust users and `velro-perf api check` send what they build.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from scenarios.checks import Expect

__all__ = [
    "CATEGORY_NEEDS",
    "OPERATIONS",
    "OPERATION_KINDS",
    "PLACEHOLDERS",
    "PLACEHOLDER_RE",
    "PROMISES",
    "ApiFile",
    "Operation",
    "Outcome",
    "Prepared",
    "field_value",
    "has_field",
]

# What a backend may promise beyond its own statuses: the checks CONTRACT.md adds to every
# response (scenarios/checks.py runs each only where the API file lists it).
PROMISES = ("request_id", "server_timing", "security_headers", "error_shape")

# Every operation the suite drives: the failures (outcomes) it can describe, how its caller is
# authenticated by default, and what the operation is for.
OPERATION_KINDS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "register": ((), "none", "sign a new user up"),
    "login": (("wrong_password", "rate_limited"), "none", "log in, answering a token"),
    "me": (("bad_token",), "token", "the signed-in caller's check"),
    "logout": ((), "token", "end the caller's session"),
    "project_create": ((), "token", "create an owner-only resource"),
    "project_read": (("denied", "not_found"), "token", "read a resource as owner or other"),
    "authz_check": ((), "token", "ask whether the caller may act on a resource"),
    "team_create": ((), "token", "create a team"),
    "team_member_add": ((), "token", "add a user to a team"),
    "grant_user": ((), "token", "share a resource with a user"),
    "grant_team": ((), "token", "share a resource with a team"),
    "service_user": (("bad_key",), "service_key", "look a user up with a service key"),
}
OPERATIONS = tuple(OPERATION_KINDS)

# The operations each user class (traffic category) needs; a category whose needs are not all
# described is off, and the budgets judged on it are not applicable.
CATEGORY_NEEDS: Mapping[str, tuple[tuple[str, ...], ...]] = {
    # each inner tuple: all of these; the outer: any one of the inner tuples
    "authentication": (("login", "me"),),
    "authorization": (("login", "project_read"), ("login", "authz_check")),
    "login": (("login",),),
    "registration": (("register",),),
    "service_key": (("service_user",),),
}

PLACEHOLDERS = frozenset(
    {"email", "password", "name", "user_id", "project_id", "team_id", "action", "role"}
)
PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class Outcome:
    """A described answer: a status, an error code (checked where `error_shape` is promised)
    and headers it must carry (regular expressions; None: present with any value)."""

    status: int
    error: str | None = None
    headers: Mapping[str, str | None] = field(default_factory=dict)

    def expect(self) -> Expect:
        return Expect(self.status, error=self.error, headers=self.headers)


@dataclass(frozen=True)
class Prepared:
    """One request, ready to send: `data` is a form-encoded body, `json` a JSON one."""

    method: str
    path: str
    name: str
    headers: Mapping[str, str]
    json: Any = None
    data: str | None = None

    def describe(self) -> str:
        body = ""
        if self.json is not None:
            body = f" json {self.json}"
        elif self.data is not None:
            body = f" form {self.data}"
        return f"{self.method} {self.path}{body}"


def has_field(data: Any, dotted: str) -> bool:
    """True when `a.b.c` is in a JSON answer (a null value counts: it is there)."""
    for part in dotted.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return False
        data = data[part]
    return True


def field_value(data: Any, dotted: str) -> Any:
    """The value at `a.b.c` in a JSON answer, or None."""
    for part in dotted.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return None
        data = data[part]
    return data


@dataclass(frozen=True)
class Operation:
    """One described operation of a backend."""

    key: str
    method: str
    path: str
    name: str
    body: str  # json | form | none
    fields: Mapping[str, Any]
    auth: str  # none | token | service_key
    success_statuses: tuple[int, ...]
    returns: tuple[str, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict)
    one_of: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    id_field: str | None = None
    email_field: str | None = None
    token_field: str | None = None
    expires_in_field: str | None = None
    allowed_field: str | None = None
    after: int | None = None
    outcomes: Mapping[str, Outcome] = field(default_factory=dict)
    api: ApiFile | None = field(default=None, compare=False, repr=False)

    @property
    def endpoint(self) -> str:
        """`METHOD name`, as samples.csv and the budgets name it."""
        return f"{self.method} {self.name}"

    def prepare(
        self,
        values: Mapping[str, str],
        *,
        token: str | None = None,
        service_key: str | None = None,
        send_credentials: bool = True,
    ) -> Prepared:
        """The request for these placeholder values; the caller's token or service key is
        sent as the API file says (`send_credentials=False`: sent without any)."""
        api = self.api
        assert api is not None, "an operation is prepared through its ApiFile"

        def fill(template: str, quoted: bool) -> str:
            def one(match: re.Match[str]) -> str:
                value = str(values[match.group(1)])
                return quote(value, safe="") if quoted else value

            return PLACEHOLDER_RE.sub(one, template)

        headers: dict[str, str] = {}
        if send_credentials and self.auth == "token" and token is not None:
            headers[api.token_header] = f"{api.token_scheme} {token}" if api.token_scheme else token
        if send_credentials and self.auth == "service_key" and service_key is not None:
            headers[api.service_key_header] = service_key
        body = {
            name: fill(value, False) if isinstance(value, str) else value
            for name, value in self.fields.items()
        }
        prepared = Prepared(self.method, api.base + fill(self.path, True), self.name, headers)
        if self.body == "json":
            return Prepared(prepared.method, prepared.path, prepared.name, headers, json=body)
        if self.body == "form":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return Prepared(
                prepared.method, prepared.path, prepared.name, headers, data=urlencode(body)
            )
        return prepared

    def success(
        self,
        *,
        same_id: str | None = None,
        same_email: str | None = None,
        allowed: bool | None = None,
    ) -> list[Expect]:
        """The success answers, with the body checks the file describes, and optionally: the
        answer is about this id or email, or its decision is `allowed`."""

        def check(data: Any) -> str | None:
            return self._body_problem(data, same_id, same_email, allowed)

        return [Expect(status, body=check) for status in self.success_statuses]

    def outcome(self, name: str) -> Outcome | None:
        return self.outcomes.get(name)

    def _body_problem(
        self, data: Any, same_id: str | None, same_email: str | None, allowed: bool | None
    ) -> str | None:
        wanted = list(self.returns)
        for extra in (self.id_field, self.email_field, self.token_field, self.allowed_field):
            if extra and extra not in wanted:
                wanted.append(extra)
        if wanted and not isinstance(data, Mapping):
            return f"{self.key} answer is not a JSON object"
        absent = [name for name in wanted if not has_field(data, name)]
        if absent:
            return f"{self.key} answer lacks {absent} (it has {sorted(data)})"
        for name, value in self.values.items():
            got = field_value(data, name)
            if str(got).lower() != value.lower():
                return f"{self.key} answer has {name}={got!r}, expected {value!r}"
        for name, choices in self.one_of.items():
            got = field_value(data, name)
            if str(got) not in choices:
                return f"{self.key} answer has {name}={got!r}, expected one of {list(choices)}"
        if self.token_field:
            token = field_value(data, self.token_field)
            if not isinstance(token, str) or not token:
                return f"{self.key} answer's {self.token_field} is not a non-empty string"
        if self.expires_in_field is not None:
            lifetime = field_value(data, self.expires_in_field)
            if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
                return f"{self.key} answer's {self.expires_in_field} is not a number"
        if (
            same_id is not None
            and self.id_field
            and str(field_value(data, self.id_field)) != same_id
        ):
            return f"{self.key} answer is about another object ({self.id_field} differs)"
        if same_email is not None and self.email_field:
            got = str(field_value(data, self.email_field)).strip().lower()
            if got != same_email.strip().lower():
                return f"{self.key} answer has another {self.email_field} than the one sent"
        if allowed is not None and self.allowed_field:
            got = field_value(data, self.allowed_field)
            if got is not allowed:
                return (
                    f"expected {self.allowed_field}={str(allowed).lower()}, got "
                    f"{self.allowed_field}={got!r}"
                )
        return None


@dataclass(frozen=True)
class ApiFile:
    """A whole API file: what the backend has, promises and lacks."""

    name: str
    source: str
    sha256: str
    base: str
    promises: frozenset[str]
    token_header: str
    token_scheme: str
    token_lifetime_s: float
    service_key_header: str
    operations: Mapping[str, Operation]
    lacks: Mapping[str, str]
    # requests at once while the suite creates its users and resources before the load
    setup_concurrency: int = 8

    def has(self, *keys: str) -> bool:
        return all(key in self.operations for key in keys)

    def op(self, key: str) -> Operation:
        return self.operations[key]

    def reason_off(self, key: str) -> str:
        """Why an operation is off: the file's own words, or that it does not describe it."""
        return self.lacks.get(key) or f"{self.source} describes no {key} operation"

    def abuse_tasks(self) -> tuple[str, ...]:
        """The abuse users' tasks this backend describes an answer for."""
        tasks = []
        login = self.operations.get("login")
        if self.has("register") and login is not None and login.outcome("wrong_password"):
            tasks.append("wrong_password")
        me = self.operations.get("me")
        if me is not None and me.outcome("bad_token"):
            tasks.append("bad_token")
        service = self.operations.get("service_user")
        if service is not None and service.outcome("bad_key"):
            tasks.append("bad_key")
        return tuple(tasks)

    def category_off(self, category: str) -> str | None:
        """None when the category's user class can run, else the reason it cannot."""
        if category == "abuse":
            if self.abuse_tasks():
                return None
            return (
                f"{self.source} describes no refusal to probe (login.wrong_password, "
                "me.bad_token or service_user.bad_key)"
            )
        options = CATEGORY_NEEDS[category]
        if any(self.has(*needs) for needs in options):
            return None
        missing = sorted({key for needs in options for key in needs if key not in self.operations})
        return "; ".join(self.reason_off(key) for key in missing)

    def describe(self) -> dict[str, Any]:
        """What config.json records of the API file (its hash is part of the config hash)."""
        return {
            "name": self.name,
            "file": self.source,
            "sha256": self.sha256,
            "promises": sorted(self.promises),
            "operations": {key: op.endpoint for key, op in self.operations.items()},
            "lacks": {
                key: self.reason_off(key) for key in OPERATIONS if key not in self.operations
            },
        }

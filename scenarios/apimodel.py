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

import base64
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import quote, quote_plus, urlencode

from velro_perf.reports.runfiles import ApiDescribed
from velro_perf.scenarios.checks import PROMISES, Expect, describe_all
from velro_perf.scenarios.tokens import BAD_TOKEN_KINDS as TOKEN_KINDS

__all__ = [
    "AUTHS",
    "CATEGORY_NEEDS",
    "OPERATIONS",
    "OPERATION_KINDS",
    "PLACEHOLDERS",
    "PLACEHOLDER_RE",
    "PROMISES",
    "TOKEN_KINDS",
    "ApiFile",
    "Auth",
    "Call",
    "Client",
    "Operation",
    "OperationKey",
    "Prepared",
    "Refusal",
    "field_value",
    "has_field",
    "values_problem",
]

# Every operation the suite drives, by name: the one list mypy holds the scenarios, the
# provisioning and `velro-perf api check` to.
OperationKey = Literal[
    "register",
    "login",
    "refresh",
    "client_token",
    "me",
    "logout",
    "project_create",
    "project_read",
    "authz_check",
    "team_create",
    "team_member_add",
    "grant_user",
    "grant_team",
    "service_user",
]
OPERATIONS: tuple[OperationKey, ...] = get_args(OperationKey)

# How an operation's caller is authenticated: no credentials; the signed-in user's token; a
# service key; the OAuth2 client (RFC 6749 section 2.3.1, by HTTP Basic or body fields); the
# token the client-credentials grant gave the service.
Auth = Literal["none", "token", "service_key", "client", "client_token"]
AUTHS: tuple[Auth, ...] = get_args(Auth)

# Per operation: the failures (outcomes) it can describe, how its caller is authenticated by
# default, and what the operation is for.
OPERATION_KINDS: dict[OperationKey, tuple[tuple[str, ...], Auth, str]] = {
    "register": ((), "none", "sign a new user up"),
    "login": (("wrong_password", "rate_limited"), "none", "log in, answering a token"),
    "refresh": (("revoked",), "none", "trade a refresh token for a new pair (refresh grant)"),
    "client_token": ((), "client", "a service's token (client-credentials grant)"),
    "me": (("bad_token",), "token", "the signed-in caller's check (or token introspection)"),
    "logout": ((), "token", "end the caller's session"),
    "project_create": ((), "token", "create an owner-only resource"),
    "project_read": (("denied", "not_found"), "token", "read a resource as owner or other"),
    "authz_check": ((), "token", "ask whether the caller may act on a resource"),
    "team_create": ((), "token", "create a team"),
    "team_member_add": ((), "token", "add a user to a team"),
    "grant_user": ((), "token", "share a resource with a user"),
    "grant_team": ((), "token", "share a resource with a team"),
    "service_user": (("bad_key",), "service_key", "look a user up as a service"),
}
assert tuple(OPERATION_KINDS) == OPERATIONS, "OPERATION_KINDS lists every OperationKey in order"

# The kinds of bad token the abuse users send (scenarios/tokens.py) are TOKEN_KINDS: a
# `bad_token` outcome may answer each differently (FastAPI's OAuth2PasswordBearer: 401 to a
# missing token, 403 to a malformed one).

# The operations each user class (traffic category) needs; a category whose needs are not all
# described is off, and the budgets judged on it are not applicable.
CATEGORY_NEEDS: Mapping[str, tuple[tuple[OperationKey, ...], ...]] = {
    # each inner tuple: all of these; the outer: any one of the inner tuples
    "authentication": (("login", "me"),),
    "authorization": (("login", "project_read"), ("login", "authz_check")),
    "login": (("login",),),
    "registration": (("register",),),
    "service_key": (("service_user",),),
}

PLACEHOLDERS = frozenset(
    {
        "email", "password", "name", "user_id", "project_id", "team_id", "action", "role",
        "token", "refresh_token",
    }
)  # fmt: skip
PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class Refusal:
    """A described failure: the answers it may be (any one of them), or, for a bad token,
    the answers to each kind of token sent (`by_kind`; the kinds it does not name take
    `answers`)."""

    answers: tuple[Expect, ...]
    by_kind: Mapping[str, tuple[Expect, ...]] = field(default_factory=dict)

    def expects(self, kind: str | None = None) -> tuple[Expect, ...]:
        if kind is not None and kind in self.by_kind:
            return self.by_kind[kind]
        return self.answers

    def statuses(self) -> frozenset[int]:
        every = [*self.answers, *(e for answers in self.by_kind.values() for e in answers)]
        return frozenset(expect.status for expect in every)

    def describe(self, kind: str | None = None) -> str:
        return describe_all(self.expects(kind))


@dataclass(frozen=True)
class Client:
    """An OAuth2 client: its id and secret, sent by HTTP Basic (`basic`) or as the body's
    client_id and client_secret fields (`body`), as RFC 6749 section 2.3.1 allows."""

    id: str
    secret: str
    auth: Literal["basic", "body"] = "basic"

    def basic(self) -> str:
        # RFC 6749 section 2.3.1: id and secret are form-encoded before Basic's base64
        pair = f"{quote_plus(self.id)}:{quote_plus(self.secret)}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")


@dataclass(frozen=True)
class Prepared:
    """One request, ready to send: `data` is a form-encoded body, `json` a JSON one;
    `shown` is what a person may read of it (secrets masked)."""

    method: str
    path: str
    name: str
    headers: Mapping[str, str]
    json: Any = None
    data: str | None = None
    shown: str = ""

    def describe(self) -> str:
        return f"{self.method} {self.path}{self.shown}"


@dataclass(frozen=True, slots=True)
class Call:
    """A prepared request as a Sender (scenarios/api.py) sends it: the answers it accepts,
    its request name, the traffic it counts as (None: the sender's own), the variant a
    failure names, and the checks the backend promises on every answer."""

    prepared: Prepared
    expects: Sequence[Expect]
    name: str
    category: str | None = None
    label: str | None = None
    promises: Collection[str] = PROMISES


# placeholders whose values a report never shows
_SECRET_PLACEHOLDERS = frozenset({"password", "token", "refresh_token"})


_ABSENT = object()


def _walk(data: Any, dotted: str) -> Any:
    """The value at `a.b.c` in a JSON answer, or _ABSENT."""
    for part in dotted.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return _ABSENT
        data = data[part]
    return data


def has_field(data: Any, dotted: str) -> bool:
    """True when `a.b.c` is in a JSON answer (a null value counts: it is there)."""
    return _walk(data, dotted) is not _ABSENT


def field_value(data: Any, dotted: str) -> Any:
    """The value at `a.b.c` in a JSON answer, or None."""
    value = _walk(data, dotted)
    return None if value is _ABSENT else value


@dataclass(frozen=True)
class Operation:
    """One described operation of a backend."""

    key: OperationKey
    method: str
    path: str
    name: str
    body: str  # json | form | none
    fields: Mapping[str, Any]
    auth: Auth
    success_statuses: tuple[int, ...]
    returns: tuple[str, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict)
    one_of: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    id_field: str | None = None
    email_field: str | None = None
    token_field: str | None = None
    refresh_field: str | None = None
    expires_in_field: str | None = None
    allowed_field: str | None = None
    after: int | None = None
    outcomes: Mapping[str, Refusal] = field(default_factory=dict)
    api: ApiFile | None = field(default=None, compare=False, repr=False)

    @property
    def endpoint(self) -> str:
        """`METHOD name`, as samples.csv and the budgets name it."""
        return f"{self.method} {self.name}"

    @property
    def token_in_body(self) -> bool:
        """The token checked is sent in the body (`{token}`: token introspection, RFC 7662)
        rather than as the caller's credentials."""
        return any(isinstance(value, str) and "{token}" in value for value in self.fields.values())

    def prepare(
        self,
        values: Mapping[str, str],
        *,
        token: str | None = None,
        service_key: str | None = None,
        send_credentials: bool = True,
    ) -> Prepared:
        """The request for these placeholder values; the caller's token, service key or OAuth2
        client is sent as the API file says (`send_credentials=False`: sent without any). A
        `{token}` in the body takes `token`; a field whose `{token}` has no value is left out."""
        api = self.api
        assert api is not None, "an operation is prepared through its ApiFile"
        filled = dict(values)
        if token is not None:
            filled.setdefault("token", token)

        def fill(template: str, quoted: bool) -> str:
            def one(match: re.Match[str]) -> str:
                value = str(filled[match.group(1)])
                return quote(value, safe="") if quoted else value

            return PLACEHOLDER_RE.sub(one, template)

        headers: dict[str, str] = {}
        body: dict[str, Any] = {}
        secret: set[str] = set()
        as_client = ""
        for name, value in self.fields.items():
            if isinstance(value, str):
                wanted = set(PLACEHOLDER_RE.findall(value))
                if "token" in wanted and "token" not in filled:
                    continue  # a missing token, sent as such
                if wanted & _SECRET_PLACEHOLDERS:
                    secret.add(name)
                value = fill(value, False)
            body[name] = value
        if send_credentials:
            if (
                self.auth in ("token", "client_token")
                and token is not None
                and not self.token_in_body
            ):
                scheme = api.token_scheme
                headers[api.token_header] = f"{scheme} {token}" if scheme else token
            elif self.auth == "service_key" and service_key is not None:
                headers[api.service_key_header] = service_key
            elif self.auth == "client":
                client = api.client_for(self.key)
                assert client is not None, "the file gives a client to every client operation"
                if client.auth == "basic":
                    headers["Authorization"] = client.basic()
                    as_client = f" as client {client.id} (HTTP Basic)"
                else:
                    body.update(client_id=client.id, client_secret=client.secret)
                    secret.add("client_secret")
        path = api.base + fill(self.path, True)
        shown = {name: "***" if name in secret else value for name, value in body.items()}
        if self.body == "json":
            return Prepared(
                self.method, path, self.name, headers, json=body,
                shown=f" json {shown}{as_client}",
            )  # fmt: skip
        if self.body == "form":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return Prepared(
                self.method, path, self.name, headers, data=urlencode(body),
                shown=f" form {urlencode(shown, safe='*')}{as_client}",
            )  # fmt: skip
        return Prepared(self.method, path, self.name, headers, shown=as_client)

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

    def outcome(self, name: str) -> Refusal | None:
        return self.outcomes.get(name)

    def _body_problem(
        self, data: Any, same_id: str | None, same_email: str | None, allowed: bool | None
    ) -> str | None:
        wanted = list(self.returns)
        for extra in (
            self.id_field, self.email_field, self.token_field, self.refresh_field,
            self.allowed_field,
        ):  # fmt: skip
            if extra and extra not in wanted:
                wanted.append(extra)
        if wanted and not isinstance(data, Mapping):
            return f"{self.key} answer is not a JSON object"
        absent = [name for name in wanted if not has_field(data, name)]
        if absent:
            return f"{self.key} answer lacks {absent} (it has {sorted(data)})"
        problem = values_problem(self.key, data, self.values)
        if problem is not None:
            return problem
        for name, choices in self.one_of.items():
            got = field_value(data, name)
            if str(got) not in choices:
                return f"{self.key} answer has {name}={got!r}, expected one of {list(choices)}"
        for token_field in (self.token_field, self.refresh_field):
            token = field_value(data, token_field) if token_field else ""
            if token_field and (not isinstance(token, str) or not token):
                return f"{self.key} answer's {token_field} is not a non-empty string"
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


def values_problem(what: str, data: Any, values: Mapping[str, str]) -> str | None:
    """The first `{field = "value"}` a JSON answer does not have (compared case-insensitively,
    so `true` matches JSON's true), or None."""
    for name, value in values.items():
        got = field_value(data, name)
        shown = "true" if got is True else "false" if got is False else got
        if str(shown).lower() != value.lower():
            return f"{what} answer has {name}={got!r}, expected {value!r}"
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
    operations: Mapping[OperationKey, Operation]
    lacks: Mapping[OperationKey, str]
    # requests at once while the suite creates its users and resources before the load
    setup_concurrency: int = 8
    # the OAuth2 client of the users' grants and of introspection, and the service's client
    # of the client-credentials grant (the user-facing one when the file gives none)
    client: Client | None = None
    service_client: Client | None = None

    def has(self, *keys: OperationKey) -> bool:
        return all(key in self.operations for key in keys)

    def op(self, key: OperationKey) -> Operation:
        return self.operations[key]

    def client_for(self, key: OperationKey) -> Client | None:
        if key == "client_token":
            return self.service_client or self.client
        return self.client

    def reason_off(self, key: OperationKey) -> str:
        """Why an operation is off: the file's own words, or that it does not describe it."""
        return self.lacks.get(key) or f"{self.source} describes no {key} operation"

    @property
    def refreshes(self) -> bool:
        """Users renew their token through `refresh` (else they log in again)."""
        login = self.operations.get("login")
        return self.has("refresh") and login is not None and login.refresh_field is not None

    @property
    def service_by_grant(self) -> bool:
        """Service users get their token by the client-credentials grant."""
        service = self.operations.get("service_user")
        return service is not None and service.auth == "client_token"

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
        if service is not None and service.auth == "service_key" and service.outcome("bad_key"):
            tasks.append("bad_key")
        refresh = self.operations.get("refresh")
        if self.refreshes and refresh is not None and refresh.outcome("revoked"):
            tasks.append("refresh_replay")
        return tuple(tasks)

    def category_off(self, category: str) -> str | None:
        """None when the category's user class can run, else the reason it cannot."""
        if category == "abuse":
            if self.abuse_tasks():
                return None
            return (
                f"{self.source} describes no refusal to probe (login.wrong_password, "
                "me.bad_token, service_user.bad_key or refresh.revoked)"
            )
        options = CATEGORY_NEEDS[category]
        if any(self.has(*needs) for needs in options):
            return None
        missing = sorted({key for needs in options for key in needs if key not in self.operations})
        return "; ".join(self.reason_off(key) for key in missing)

    def described(self) -> ApiDescribed:
        """What config.json records of the API file (its hash is part of the config hash; the
        file itself is config.json's `api_file`)."""
        return {
            "name": self.name,
            "sha256": self.sha256,
            "promises": sorted(self.promises),
            "operations": {key: op.endpoint for key, op in self.operations.items()},
            "lacks": {
                key: self.reason_off(key) for key in OPERATIONS if key not in self.operations
            },
        }

"""A backend's API as data: the API file (TOML, docs/api-file.md) and the requests it implies.

The scenarios drive operations (`login`, `me`, `project_read`, ...), never paths: an API
file says, for each operation a backend has, its method, path, body, the statuses that mean
success, denial and not-found, and where the token is. `targets/contract.toml` describes
CONTRACT.md and is the default; it is the first API file, not a special case.

Everything here is pure (no I/O but reading the file): `Operation.prepare` builds a request,
`Operation.success` / `Operation.outcome` give the answers a scenario accepts, and both the
Locust users and `velro-perf api check` send what they build.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from scenarios.checks import Expect
from scenarios.errors import ScenarioConfigError

__all__ = [
    "CATEGORY_NEEDS",
    "OPERATIONS",
    "PROMISES",
    "Api",
    "Operation",
    "Outcome",
    "Prepared",
    "field_value",
    "load_api",
    "parse_api",
]

# What a backend may promise beyond its own statuses: the checks CONTRACT.md adds to every
# response (scenarios/checks.py runs each only where the API file lists it).
PROMISES = ("request_id", "server_timing", "security_headers", "error_shape")

# Every operation the suite drives: the failures (outcomes) it can describe, how its caller is
# authenticated by default, and what the operation is for.
_OPS: dict[str, tuple[tuple[str, ...], str, str]] = {
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
OPERATIONS = tuple(_OPS)

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
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_OP_KEYS = frozenset(
    {
        "method", "path", "name", "body", "fields", "auth", "success", "returns", "values",
        "one_of", "id", "email", "token", "expires_in", "allowed", "after",
    }
)  # fmt: skip
_OUTCOME_KEYS = frozenset({"status", "error", "headers"})
_TOP_KEYS = frozenset({"api", "token", "service_key", "operations"})
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


def _error(message: str) -> ScenarioConfigError:
    return ScenarioConfigError(message)


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
    api: Api | None = field(default=None, compare=False, repr=False)

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
        assert api is not None, "an operation is prepared through its Api"

        def fill(template: str, quoted: bool) -> str:
            def one(match: re.Match[str]) -> str:
                value = str(values[match.group(1)])
                return quote(value, safe="") if quoted else value

            return _PLACEHOLDER.sub(one, template)

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
        absent = [name for name in wanted if field_value(data, name) is None]
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
class Api:
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


# ------------------------------------------------------------------------------ parsing


def load_api(path: str | Path) -> Api:
    """Read and validate an API file; ScenarioConfigError names the key, the value and the fix."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise _error(
            f"API file {str(p)!r} does not exist; give a file such as targets/contract.toml "
            "(docs/api-file.md)"
        ) from None
    except OSError as exc:
        raise _error(f"API file {str(p)!r} cannot be read ({exc.strerror}); check it") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _error(f"API file {str(p)!r} is not valid TOML: {exc}; fix the syntax") from None
    return parse_api(data, source=str(p), sha256=hashlib.sha256(raw).hexdigest())


def _where(source: str, key: str) -> str:
    return f"{source}: {key}"


def _string(value: Any, where: str, fix: str) -> str:
    if not isinstance(value, str):
        raise _error(f"{where} is {value!r}; {fix}")
    return value


def _table(value: Any, where: str, fix: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _error(f"{where} is {value!r}; {fix}")
    return value


def _unknown(table: Mapping[str, Any], known: Collection[str], where: str) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise _error(
            f"{where} has unknown key {unknown[0]!r}; use only {', '.join(sorted(known))} "
            "(docs/api-file.md)"
        )


def _status(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise _error(f"{where} is {value!r}; give an HTTP status number such as 200 or 404")
    return value


def _outcome(value: Any, where: str) -> Outcome:
    if isinstance(value, int) and not isinstance(value, bool):
        return Outcome(_status(value, where))
    table = _table(value, where, 'give a status (401) or a table { status = 401, error = "..." }')
    _unknown(table, _OUTCOME_KEYS, where)
    if "status" not in table:
        raise _error(f"{where} has no status; give status = 401 (say)")
    error = table.get("error")
    if error is not None:
        _string(error, f"{where}.error", "give the error code the body carries, as a string")
    headers_raw = _table(
        table.get("headers", {}), f"{where}.headers", 'give { "Retry-After" = "^\\\\d+$" }'
    )
    headers: dict[str, str | None] = {}
    for name, pattern in headers_raw.items():
        text = _string(pattern, f"{where}.headers.{name}", "give a regular expression string")
        try:
            re.compile(text)
        except re.error as exc:
            raise _error(
                f"{where}.headers.{name} is {text!r}, not a regular expression ({exc}); fix it "
                '(".*" accepts any value)'
            ) from None
        headers[name] = text
    return Outcome(_status(table["status"], f"{where}.status"), error, headers)


def _placeholders(template: str, where: str) -> None:
    for match in _PLACEHOLDER.finditer(template):
        if match.group(1) not in PLACEHOLDERS:
            raise _error(
                f"{where} is {template!r}: {{{match.group(1)}}} is not a placeholder; use "
                f"{', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}"
            )


def _name(path: str, base: str) -> str:
    # parameterised URLs grouped under one name, as CONTRACT.md's `{id}` (Locust `name=`)
    return _PLACEHOLDER.sub("{id}", base + path.split("?", 1)[0])


def _operation(key: str, raw: Any, source: str, base: str) -> Operation:
    where = _where(source, f"operations.{key}")
    table = _table(raw, where, f"give a table [operations.{key}] with method, path and success")
    outcomes_known, default_auth, _ = _OPS[key]
    _unknown(table, _OP_KEYS | set(outcomes_known), where)
    for required in ("method", "path", "success"):
        if required not in table:
            raise _error(f"{where} has no {required}; give it (docs/api-file.md, operations)")
    method = _string(table["method"], f"{where}.method", "give GET, POST, PUT, PATCH or DELETE")
    if method.upper() not in _METHODS:
        raise _error(f"{where}.method is {method!r}; give GET, POST, PUT, PATCH or DELETE")
    path = _string(table["path"], f"{where}.path", 'give a path such as "/auth/login"')
    if not path.startswith("/"):
        raise _error(f"{where}.path is {path!r}; give a path starting with '/', like '/users/me'")
    _placeholders(path, f"{where}.path")
    fields_raw = _table(
        table.get("fields", {}),
        f"{where}.fields",
        'give a table of body fields, e.g. { username = "{email}", password = "{password}" }',
    )
    fields: dict[str, Any] = {}
    for name, value in fields_raw.items():
        if isinstance(value, str):
            _placeholders(value, f"{where}.fields.{name}")
        elif isinstance(value, Mapping | list):
            raise _error(
                f"{where}.fields.{name} is {value!r}; give a string (placeholders allowed), "
                "a number or a boolean"
            )
        fields[name] = value
    body = _string(
        table.get("body", "json" if fields else "none"), f"{where}.body", "give json, form or none"
    )
    if body not in {"json", "form", "none"}:
        raise _error(f"{where}.body is {body!r}; give json, form (OAuth2 password flow) or none")
    if body == "none" and fields:
        raise _error(f"{where}.body is 'none' but fields are given; give body = json or form")
    auth = _string(
        table.get("auth", default_auth), f"{where}.auth", "give none, token or service_key"
    )
    if auth not in {"none", "token", "service_key"}:
        raise _error(f"{where}.auth is {auth!r}; give none, token or service_key")
    success_raw = table["success"]
    statuses = success_raw if isinstance(success_raw, list) else [success_raw]
    if not statuses:
        raise _error(f"{where}.success is []; give the status that means success, e.g. 200")
    success = tuple(_status(s, f"{where}.success") for s in statuses)

    def optional_field(name: str) -> str | None:
        value = table.get(name)
        if value is None:
            return None
        text = _string(value, f"{where}.{name}", "give the answer's field name, like 'id'")
        if not text:
            raise _error(f"{where}.{name} is ''; give the answer's field name or leave it out")
        return text

    returns = table.get("returns", [])
    if not isinstance(returns, list) or not all(isinstance(r, str) and r for r in returns):
        raise _error(f"{where}.returns is {returns!r}; give a list of field names")
    values = _table(table.get("values", {}), f"{where}.values", "give { field = 'value' }")
    for name, value in values.items():
        _string(value, f"{where}.values.{name}", "give the value the field must have, a string")
    one_of_raw = _table(table.get("one_of", {}), f"{where}.one_of", "give { field = ['a', 'b'] }")
    one_of: dict[str, tuple[str, ...]] = {}
    for name, choices in one_of_raw.items():
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise _error(f"{where}.one_of.{name} is {choices!r}; give a list of strings")
        one_of[name] = tuple(choices)
    after = table.get("after")
    if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 1):
        raise _error(
            f"{where}.after is {after!r}; give the number of wrong passwords after which the "
            "rate limit must answer (1 or more)"
        )
    if key == "login" and optional_field("token") is None:
        raise _error(
            f"{where} has no token; give the answer's field that holds it, e.g. "
            'token = "access_token"'
        )
    return Operation(
        key=key,
        method=method.upper(),
        path=path,
        name=_name(path, base)
        if "name" not in table
        else _string(
            table["name"], f"{where}.name", "give the request name Locust and the budgets use"
        ),
        body=body,
        fields=fields,
        auth=auth,
        success_statuses=success,
        returns=tuple(returns),
        values=dict(values),
        one_of=one_of,
        id_field=optional_field("id"),
        email_field=optional_field("email"),
        token_field=optional_field("token"),
        expires_in_field=optional_field("expires_in"),
        allowed_field=optional_field("allowed"),
        after=after,
        outcomes={
            name: _outcome(table[name], f"{where}.{name}")
            for name in outcomes_known
            if name in table
        },
    )


def parse_api(data: Mapping[str, Any], *, source: str = "<api>", sha256: str = "") -> Api:
    """Validate the parsed TOML of an API file; `source` names the file in errors."""
    _unknown(data, _TOP_KEYS, source)
    head = _table(data.get("api", {}), _where(source, "api"), "give an [api] table with a name")
    _unknown(head, {"name", "description", "base", "promises", "lacks"}, _where(source, "api"))
    name = _string(head.get("name", Path(source).stem), _where(source, "api.name"), "give a name")
    base = _string(head.get("base", ""), _where(source, "api.base"), 'give a prefix like "/api/v1"')
    if base and (not base.startswith("/") or base.endswith("/")):
        raise _error(
            f"{_where(source, 'api.base')} is {base!r}; give a prefix that starts with '/' and "
            "does not end with one, like '/api/v1', or leave it out"
        )
    promises = head.get("promises", [])
    if not isinstance(promises, list) or not all(p in PROMISES for p in promises):
        raise _error(
            f"{_where(source, 'api.promises')} is {promises!r}; give a list of what the backend "
            f"promises on every response, from {list(PROMISES)} ([] for none)"
        )
    lacks = _table(head.get("lacks", {}), _where(source, "api.lacks"), "give { op = 'reason' }")
    for key, reason in lacks.items():
        if key not in _OPS:
            raise _error(
                f"{_where(source, 'api.lacks')} names {key!r}, not an operation; use "
                f"{', '.join(OPERATIONS)}"
            )
        _string(reason, _where(source, f"api.lacks.{key}"), "give the reason, a sentence")
    token = _table(data.get("token", {}), _where(source, "token"), "give a [token] table")
    _unknown(token, {"header", "scheme", "lifetime_s"}, _where(source, "token"))
    lifetime = token.get("lifetime_s", 900)
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
        raise _error(
            f"{_where(source, 'token.lifetime_s')} is {lifetime!r}; give the token's lifetime in "
            "seconds (used when the login answer has no expires_in field)"
        )
    service = _table(
        data.get("service_key", {}), _where(source, "service_key"), "give a [service_key] table"
    )
    _unknown(service, {"header"}, _where(source, "service_key"))
    raw_ops = _table(
        data.get("operations"),
        _where(source, "operations"),
        "give one [operations.<name>] table per operation the backend has",
    )
    for key in raw_ops:
        if key not in _OPS:
            raise _error(
                f"{_where(source, 'operations')} has {key!r}, not an operation the suite drives; "
                f"use {', '.join(OPERATIONS)}"
            )
    operations = {key: _operation(key, raw_ops[key], source, base) for key in raw_ops}
    if "login" not in operations:
        raise _error(
            f"{source} has no [operations.login]; every scenario signs in, so describe the "
            "backend's login (docs/api-file.md)"
        )
    for key in lacks:
        if key in operations:
            raise _error(
                f"{_where(source, 'api.lacks')} names {key!r}, which [operations.{key}] "
                "describes; drop one of the two"
            )
    api = Api(
        name=name,
        source=source,
        sha256=sha256,
        base=base,
        promises=frozenset(promises),
        token_header=_string(
            token.get("header", "Authorization"), _where(source, "token.header"), "give a header"
        ),
        token_scheme=_string(
            token.get("scheme", "Bearer"), _where(source, "token.scheme"), 'give "Bearer" or ""'
        ),
        token_lifetime_s=float(lifetime),
        service_key_header=_string(
            service.get("header", "X-Service-Key"),
            _where(source, "service_key.header"),
            "give the header the key is sent in",
        ),
        operations={},
        lacks=dict(lacks),
    )
    bound = {key: _bind(op, api) for key, op in operations.items()}
    object.__setattr__(api, "operations", bound)
    return api


def _bind(op: Operation, api: Api) -> Operation:
    object.__setattr__(op, "api", api)
    return op

"""Reading an API file (TOML, docs/api-file.md) into the model of scenarios/apimodel.py.

A malformed file is a ScenarioConfigError naming the file, the key, the value and the fix;
the file's SHA-256 goes with the model (part of a run's configuration hash).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from velro_perf.scenarios.apimodel import (
    AUTHS,
    OPERATION_KINDS,
    OPERATIONS,
    PLACEHOLDER_RE,
    PLACEHOLDERS,
    PROMISES,
    TOKEN_KINDS,
    ApiFile,
    Client,
    Operation,
    OperationKey,
    Refusal,
    values_problem,
)
from velro_perf.scenarios.checks import Expect
from velro_perf.scenarios.errors import ScenarioConfigError

__all__ = ["load_api", "parse_api"]

_OP_KEYS = frozenset(
    {
        "method", "path", "name", "body", "fields", "auth", "success", "returns", "values",
        "one_of", "id", "email", "token", "refresh_token", "expires_in", "allowed", "after",
    }
)  # fmt: skip
_OUTCOME_KEYS = frozenset({"status", "error", "headers", "values"})
_TOP_KEYS = frozenset({"api", "token", "service_key", "client", "service_client", "operations"})
# a failure's possible shapes, for the messages that refuse a wrong one
_OUTCOME_FIX = (
    "give a status (401), a list of statuses ([401, 403]) or a table { status = 401, error = "
    '"..." }; a bad_token may also be told apart by what was sent: { missing = 401, '
    "malformed = 403 }"
)
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


def _error(message: str) -> ScenarioConfigError:
    return ScenarioConfigError(message)


def load_api(path: str | Path) -> ApiFile:
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


def _statuses(value: Any, where: str) -> tuple[int, ...]:
    """A status or a non-empty list of them."""
    if isinstance(value, list):
        if not value:
            raise _error(f"{where} is []; {_OUTCOME_FIX}")
        return tuple(_status(item, where) for item in value)
    return (_status(value, where),)


def _answers(value: Any, where: str) -> tuple[Expect, ...]:
    """One described failure without kinds: a status, a list of them, or a table."""
    if not isinstance(value, Mapping):
        if not isinstance(value, int | list) or isinstance(value, bool):
            raise _error(f"{where} is {value!r}; {_OUTCOME_FIX}")
        return tuple(Expect(status) for status in _statuses(value, where))
    table = value
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
    values = _table(table.get("values", {}), f"{where}.values", "give { field = 'value' }")
    for name, wanted in values.items():
        _string(wanted, f"{where}.values.{name}", "give the value the field must have, a string")
    body = None
    words = ""
    if values:
        fixed = dict(values)
        body = lambda data: values_problem("the", data, fixed)  # noqa: E731
        words = " ".join(f"{name}={wanted}" for name, wanted in fixed.items())
    return tuple(
        Expect(status, error=error, body=body, headers=headers, body_words=words)
        for status in _statuses(table["status"], f"{where}.status")
    )


def _outcome(name: str, value: Any, where: str) -> Refusal:
    """A described failure; a bad_token's may name the answer to each kind of token sent."""
    if name != "bad_token" or not isinstance(value, Mapping):
        return Refusal(_answers(value, where))
    kinds = {kind: value[kind] for kind in TOKEN_KINDS if kind in value}
    if not kinds:
        return Refusal(_answers(value, where))
    rest = {key: item for key, item in value.items() if key not in kinds}
    by_kind = {kind: _answers(item, f"{where}.{kind}") for kind, item in kinds.items()}
    if rest:
        return Refusal(_answers(rest, where), by_kind)
    unnamed = [kind for kind in TOKEN_KINDS if kind not in kinds]
    if unnamed:
        raise _error(
            f"{where} names no answer to {', '.join(unnamed)} tokens; give each, or a status "
            "for the rest: { missing = 401, status = 403 }"
        )
    return Refusal(by_kind["missing"], by_kind)


def _placeholders(template: str, where: str) -> None:
    for match in PLACEHOLDER_RE.finditer(template):
        if match.group(1) not in PLACEHOLDERS:
            raise _error(
                f"{where} is {template!r}: {{{match.group(1)}}} is not a placeholder; use "
                f"{', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}"
            )


def _name(path: str, base: str) -> str:
    # parameterised URLs grouped under one name, as CONTRACT.md's `{id}` (Locust `name=`)
    return PLACEHOLDER_RE.sub("{id}", base + path.split("?", 1)[0])


def _request(table: Mapping[str, Any], where: str, default_auth: str) -> dict[str, Any]:
    """The keys that say what is sent: method, path, body, fields, auth."""
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
    auth = table.get("auth", default_auth)
    if auth not in AUTHS:
        raise _error(f"{where}.auth is {auth!r}; give {', '.join(AUTHS)}")
    return {"method": method.upper(), "path": path, "body": body, "fields": fields, "auth": auth}


def _answer(key: str, table: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The keys that say what a successful answer is: statuses, fields, values."""
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
    if key in ("login", "refresh", "client_token") and optional_field("token") is None:
        raise _error(
            f"{where} has no token; give the answer's field that holds it, e.g. "
            'token = "access_token"'
        )
    if key == "refresh" and optional_field("refresh_token") is None:
        raise _error(
            f"{where} has no refresh_token; give the answer's field that holds the new refresh "
            'token (rotation), e.g. refresh_token = "refresh_token"'
        )
    return {
        "success_statuses": success,
        "returns": tuple(returns),
        "values": dict(values),
        "one_of": one_of,
        "id_field": optional_field("id"),
        "email_field": optional_field("email"),
        "token_field": optional_field("token"),
        "refresh_field": optional_field("refresh_token"),
        "expires_in_field": optional_field("expires_in"),
        "allowed_field": optional_field("allowed"),
        "after": after,
    }


def _operation(key: OperationKey, raw: Any, source: str, base: str) -> Operation:
    where = _where(source, f"operations.{key}")
    table = _table(raw, where, f"give a table [operations.{key}] with method, path and success")
    outcomes_known, default_auth, _ = OPERATION_KINDS[key]
    _unknown(table, _OP_KEYS | set(outcomes_known), where)
    for required in ("method", "path", "success"):
        if required not in table:
            raise _error(f"{where} has no {required}; give it (docs/api-file.md, operations)")
    sent = _request(table, where, default_auth)
    name = (
        _string(table["name"], f"{where}.name", "give the request name Locust and the budgets use")
        if "name" in table
        else _name(sent["path"], base)
    )
    return Operation(
        key=key,
        name=name,
        **sent,
        **_answer(key, table, where),
        outcomes={
            outcome: _outcome(outcome, table[outcome], f"{where}.{outcome}")
            for outcome in outcomes_known
            if outcome in table
        },
    )


def _head(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The [api] table: name, base, promises, lacks."""
    head = _table(data.get("api", {}), _where(source, "api"), "give an [api] table with a name")
    _unknown(
        head,
        {"name", "description", "base", "promises", "lacks", "setup_concurrency"},
        _where(source, "api"),
    )
    concurrency = head.get("setup_concurrency", 8)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise _error(
            f"{_where(source, 'api.setup_concurrency')} is {concurrency!r}; give how many "
            "setup requests the backend takes at once, a whole number from 1 (default 8)"
        )
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
    lacked: dict[OperationKey, str] = {}
    for key, reason in lacks.items():
        operation = _operation_key(key, f"{_where(source, 'api.lacks')} names {key!r}")
        lacked[operation] = _string(
            reason, _where(source, f"api.lacks.{key}"), "give the reason, a sentence"
        )
    return {
        "name": name,
        "base": base,
        "promises": frozenset(promises),
        "lacks": lacked,
        "setup_concurrency": concurrency,
    }


def _operation_key(name: str, where: str) -> OperationKey:
    for key in OPERATIONS:
        if key == name:
            return key
    raise _error(f"{where}, not an operation the suite drives; use {', '.join(OPERATIONS)}")


def _client(data: Mapping[str, Any], name: str, source: str) -> Client | None:
    """An OAuth2 client table ([client] or [service_client]): id, secret, auth."""
    if name not in data:
        return None
    where = _where(source, name)
    table = _table(data[name], where, f'give [{name}] with id = "..." and secret = "..."')
    _unknown(table, {"id", "secret", "auth"}, where)
    for key in ("id", "secret"):
        if key not in table:
            raise _error(f"{where} has no {key}; give the OAuth2 client's {key} (docs/api-file.md)")
    auth = table.get("auth", "basic")
    if auth not in ("basic", "body"):
        raise _error(
            f"{where}.auth is {auth!r}; give basic (HTTP Basic) or body (client_id and "
            "client_secret fields), RFC 6749 section 2.3.1"
        )
    return Client(
        id=_string(table["id"], f"{where}.id", "give the client id, a string"),
        secret=_string(table["secret"], f"{where}.secret", "give the client secret, a string"),
        auth=auth,
    )


def _credentials(data: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The [token] and [service_key] tables: how credentials are sent."""
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
    return {
        "token_header": _string(
            token.get("header", "Authorization"), _where(source, "token.header"), "give a header"
        ),
        "token_scheme": _string(
            token.get("scheme", "Bearer"), _where(source, "token.scheme"), 'give "Bearer" or ""'
        ),
        "token_lifetime_s": float(lifetime),
        "service_key_header": _string(
            service.get("header", "X-Service-Key"),
            _where(source, "service_key.header"),
            "give the header the key is sent in",
        ),
        "client": _client(data, "client", source),
        "service_client": _client(data, "service_client", source),
    }


def parse_api(data: Mapping[str, Any], *, source: str = "<api>", sha256: str = "") -> ApiFile:
    """Validate the parsed TOML of an API file; `source` names the file in errors."""
    _unknown(data, _TOP_KEYS, source)
    head = _head(data, source)
    credentials = _credentials(data, source)
    raw_ops = _table(
        data.get("operations"),
        _where(source, "operations"),
        "give one [operations.<name>] table per operation the backend has",
    )
    operations = {
        key: _operation(key, raw_ops[key], source, head["base"])
        for key in (
            _operation_key(name, f"{_where(source, 'operations')} has {name!r}") for name in raw_ops
        )
    }
    if "login" not in operations:
        raise _error(
            f"{source} has no [operations.login]; every scenario signs in, so describe the "
            "backend's login (docs/api-file.md)"
        )
    for key in head["lacks"]:
        if key in operations:
            raise _error(
                f"{_where(source, 'api.lacks')} names {key!r}, which [operations.{key}] "
                "describes; drop one of the two"
            )
    _check_grants(operations, credentials, source)
    api = ApiFile(source=source, sha256=sha256, operations={}, **head, **credentials)
    bound = {key: _bind(op, api) for key, op in operations.items()}
    object.__setattr__(api, "operations", bound)
    return api


def _check_grants(
    operations: Mapping[OperationKey, Operation], credentials: Mapping[str, Any], source: str
) -> None:
    """What the OAuth2 operations need of each other and of the [client] tables."""
    for key, op in operations.items():
        where = _where(source, f"operations.{key}")
        if op.auth == "client" and credentials["client"] is None:
            raise _error(
                f"{where}.auth is 'client' but the file has no [client]; give [client] with the "
                "OAuth2 client's id and secret"
            )
        if op.auth == "client_token" and "client_token" not in operations:
            raise _error(
                f"{where}.auth is 'client_token' but the file has no [operations.client_token]; "
                "describe the client-credentials grant the service gets its token by"
            )
    refresh = operations.get("refresh")
    if refresh is not None and not _sends(refresh, "refresh_token"):
        raise _error(
            f"{_where(source, 'operations.refresh')} sends no {{refresh_token}}; give fields = "
            '{ grant_type = "refresh_token", refresh_token = "{refresh_token}" } (an OAuth2 '
            'form) or { refresh_token = "{refresh_token}" }'
        )
    if refresh is not None and operations["login"].refresh_field is None:
        raise _error(
            f"{_where(source, 'operations.login')} has no refresh_token, so there is no refresh "
            'token to refresh with; give refresh_token = "refresh_token" (the answer\'s field)'
        )


def _sends(op: Operation, placeholder: str) -> bool:
    texts = [op.path, *(value for value in op.fields.values() if isinstance(value, str))]
    return any(placeholder in PLACEHOLDER_RE.findall(text) for text in texts)


def _bind(op: Operation, api: ApiFile) -> Operation:
    object.__setattr__(op, "api", api)
    return op

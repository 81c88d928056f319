"""Response checks: what CONTRACT.md promises for every response and for each call.

A check returns a problem sentence ("expected 404 not_found, got 200") or None. Messages
carry no ids or timings, so Locust groups equal failures into one row of its failure table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FORBIDDEN_HEADERS",
    "PROMISES",
    "RETRY_AFTER",
    "SECURITY_HEADERS",
    "Checked",
    "Expect",
    "HeaderView",
    "describe_all",
    "header_value",
    "verify",
]

BodyCheck = Callable[[Any], str | None]

# CONTRACT.md "Every response": the OWASP Secure Headers Project set. None = must be present
# with any value; a string = the value the contract fixes (compared case-insensitively).
SECURITY_HEADERS: Mapping[str, str | None] = {
    "Strict-Transport-Security": None,
    "Content-Security-Policy": None,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": None,
    "Cross-Origin-Opener-Policy": None,
    "Cross-Origin-Embedder-Policy": None,
    "Cross-Origin-Resource-Policy": None,
    "X-Permitted-Cross-Domain-Policies": "none",
    "Cache-Control": "no-store",
}
_SECURITY_WANTED = tuple(
    (name, name.lower(), None if wanted is None else wanted.lower())
    for name, wanted in SECURITY_HEADERS.items()
)
# headers that disclose the server software (OWASP Secure Headers: "headers to remove")
FORBIDDEN_HEADERS = ("Server", "X-Powered-By")

# RFC 9110 §10.2.3: Retry-After is delay-seconds or an HTTP-date
RETRY_AFTER = r"^\s*(\d+|[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT)\s*$"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_APP_TIMING = re.compile(r"(^|,)\s*app\s*;[^,]*\bdur=", re.IGNORECASE)
# What a backend may promise beyond its own statuses: the checks CONTRACT.md adds to every
# response, each run only where the backend's API file lists it (all of them by default).
PROMISES = ("request_id", "server_timing", "security_headers", "error_shape")


def retry_after_s(headers: Any) -> float | None:
    """Retry-After's delay-seconds, or None (absent, or an HTTP-date)."""
    value = header_value(headers, "Retry-After")
    return float(value) if value is not None and value.strip().isdigit() else None


class HeaderView(dict[str, str]):
    """A response's headers read once into a plain dict keyed by lower-case name, repeated
    fields joined as RFC 9110 section 5.3 allows for list-valued fields.

    Every answer is looked up about sixteen times (the request id, Server-Timing, eleven
    security headers, two that must be absent, the recorder's Server-Timing): through
    geventhttpclient's case-insensitive Headers that was a tenth of the suite's own CPU per
    request (cProfile of the /auth/me path); one pass over the header lines and plain dict
    lookups cost a fraction of it."""

    @classmethod
    def of(cls, headers: Any) -> HeaderView:
        if isinstance(headers, HeaderView):
            return headers
        view = cls()
        if headers is None:
            return view
        # geventhttpclient's Headers yields each line with its name lowered already
        lines = (
            headers.iterlower()
            if hasattr(headers, "iterlower")
            else ((str(k).lower(), v) for k, v in headers.items())
        )
        for name, value in lines:
            if isinstance(value, list | tuple):
                value = ", ".join(str(item) for item in value)
            view[name] = f"{view[name]}, {value}" if name in view else str(value)
        return view


def header_value(headers: Any, name: str) -> str | None:
    """One header's value from a HeaderView, or a requests- or geventhttpclient-style
    mapping (read into one first), or None."""
    return HeaderView.of(headers).get(name.lower())


@dataclass(frozen=True)
class Expect:
    """One answer a scenario accepts: a status, an error code for 4xx/5xx, a body check and
    headers the answer must carry (value: None = any, else a regular expression searched
    case-insensitively). An API file's described failures are Expects too (apimodel)."""

    status: int
    error: str | None = None
    body: BodyCheck | None = None
    headers: Mapping[str, str | None] = field(default_factory=dict)
    # what `body` checks, in words, for messages ("active=false")
    body_words: str = ""

    def describe(self) -> str:
        words = " ".join(part for part in (self.error, self.body_words) if part)
        return f"{self.status} {words}" if words else str(self.status)


def describe_all(expects: Sequence[Expect]) -> str:
    return " or ".join(item.describe() for item in expects)


@dataclass(frozen=True)
class Checked:
    """One response judged against the answers a scenario accepts."""

    ok: bool
    message: str
    expect: Expect | None
    data: Any
    # a refusal's Retry-After in seconds (delay-seconds form), when it gave one
    retry_after_s: float | None = None


def _error_body(data: Any, code: str | None, request_id: str) -> str | None:
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or set(error) < {"code", "message", "request_id"}:
        return 'error body is not {"error": {"code", "message", "request_id"}}'
    if code is not None and error["code"] != code:
        return f"expected error code {code!r}, got {error['code']!r}"
    if error["request_id"] != request_id:
        return "error.request_id differs from X-Request-ID"
    return None


def _common(headers: HeaderView, request_id: str, promises: Collection[str]) -> str | None:
    """CONTRACT.md "Every response": request id, Server-Timing, the security headers; each
    checked only where the backend promises it (its API file's `promises`)."""
    if "request_id" in promises:
        echoed = headers.get("x-request-id")
        if echoed is None:
            return "response lacks X-Request-ID"
        if _REQUEST_ID.match(request_id) and echoed != request_id:
            return "X-Request-ID does not echo the id the client sent"
    if "server_timing" in promises:
        timing = headers.get("server-timing")
        if not timing or not _APP_TIMING.search(timing):
            return "Server-Timing lacks app;dur=<ms>"
    if "security_headers" not in promises:
        return None
    for name, lowered, wanted in _SECURITY_WANTED:
        value = headers.get(lowered)
        if value is None:
            return f"response lacks security header {name}"
        if (
            wanted is not None
            and value.lower() != wanted
            and wanted not in [part.strip().lower() for part in value.split(",")]
        ):
            return f"expected {name}: {SECURITY_HEADERS[name]}, got {value!r}"
    for name in FORBIDDEN_HEADERS:
        if name.lower() in headers:
            return f"response discloses a {name} header"
    return None


def _snippet(body: bytes) -> str:
    text = body[:120].decode("utf-8", "replace").replace("\n", " ")
    return text + ("…" if len(body) > 120 else "")


def verify(
    status: int,
    headers: Any,
    body: bytes | None,
    request_id: str,
    expects: Sequence[Expect],
    promises: Collection[str] = PROMISES,
) -> Checked:
    """Judge one response against the answers a scenario accepts.

    The status picks the `Expect`; then the common headers and the error shape for 4xx/5xx
    (each where `promises` holds it: every one by default, as CONTRACT.md promises), the
    expected headers and the body check all have to hold.
    """
    body = body or b""
    error_shape = "error_shape" in promises
    expect = next((item for item in expects if item.status == status), None)
    if status == 0 or expect is None:
        return Checked(False, _unexpected(status, body, describe_all(expects)), None, None)
    data: Any = None
    # CONTRACT.md: "Everything is JSON" goes with its error shape; another backend's body is
    # read as JSON only where a check needs it
    needs_json = expect.body is not None or error_shape
    if body:
        try:
            data = json.loads(body)
        except ValueError:
            if needs_json:
                return Checked(
                    False,
                    f"expected {expect.describe()} with a JSON body, got {_snippet(body)!r}",
                    expect,
                    None,
                )
    headers = HeaderView.of(headers)
    problem = _common(headers, request_id, promises)
    if problem is None and status >= 400 and error_shape:
        problem = _error_body(data, expect.error, request_id)
    if problem is None:
        problem = _expected_headers(headers, expect, status)
    if problem is None and expect.body is not None:
        problem = expect.body(data)
    if problem is not None:
        return Checked(False, f"{expect.describe()}: {problem}", expect, data)
    return Checked(True, "", expect, data)


def _unexpected(status: int, body: bytes, wanted: str) -> str:
    """The message for no response, or a status no `Expect` accepts (with the error code)."""
    if status == 0:
        return f"expected {wanted}, got no response (connection error or timeout)"
    detail = ""
    try:
        parsed = json.loads(body) if body else None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            detail = f" {parsed['error'].get('code')}"
        elif isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            # OAuth2's error answer (RFC 6749 section 5.2): {"error", "error_description"}
            detail = f" {parsed['error']}"
            if isinstance(parsed.get("error_description"), str):
                detail += f" ({parsed['error_description'][:80]})"
        elif isinstance(parsed, dict) and isinstance(parsed.get("detail"), str):
            detail = f" {parsed['detail']}"  # FastAPI's own error body
    except ValueError:
        detail = " (body not JSON)"
    return f"expected {wanted}, got {status}{detail}"


def _expected_headers(headers: Any, expect: Expect, status: int) -> str | None:
    """The first header ``expect`` wants that the answer lacks or carries otherwise."""
    for name, value in expect.headers.items():
        got = header_value(headers, name)
        if got is None:
            return f"{status} lacks the {name} header"
        if value is not None and not re.search(value, got, re.IGNORECASE):
            return f"expected {name} matching {value!r}, got {got!r}"
    return None

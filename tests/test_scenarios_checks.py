"""The response checks judge status, body shape, X-Request-ID and the security headers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from velro_perf.scenarios.apifile import load_api
from velro_perf.scenarios.args import DEFAULT_API, resolve
from velro_perf.scenarios.checks import RETRY_AFTER, SECURITY_HEADERS, Expect, header_value, verify

# the contract's API file: the one model of what the reference answers
CONTRACT = load_api(resolve(DEFAULT_API))

RID = "vp-abc-1"
USER_ID = "3f0c6a52-8a8e-4d6e-9a55-1e4d2b7c9f10"


def contract_headers(request_id: str = RID, **extra: str) -> dict[str, str]:
    headers = {
        "Strict-Transport-Security": "max-age=31536000",
        "Content-Security-Policy": "default-src 'none'",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Permissions-Policy": "camera=()",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Embedder-Policy": "require-corp",
        "Cross-Origin-Resource-Policy": "same-origin",
        "X-Permitted-Cross-Domain-Policies": "none",
        "Cache-Control": "no-store",
        "X-Request-ID": request_id,
        "Server-Timing": "app;dur=1.5",
    }
    headers.update(extra)
    return headers


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def error(code: str, request_id: str = RID) -> bytes:
    return body({"error": {"code": code, "message": "no", "request_id": request_id}})


USER = {
    "id": USER_ID,
    "email": "a@example.com",
    "full_name": None,
    "created_at": "2026-01-01T00:00:00Z",
}


def test_a_conforming_success_passes_and_returns_the_parsed_body() -> None:
    verdict = verify(
        200, contract_headers(), body(USER), RID, CONTRACT.op("me").success(same_id=USER_ID)
    )
    assert verdict.ok
    assert verdict.data == USER


def test_an_expected_denial_is_a_success() -> None:
    verdict = verify(
        404, contract_headers(), error("not_found"), RID, [Expect(404, error="not_found")]
    )
    assert verdict.ok


def test_an_unexpected_status_says_what_was_expected_and_what_came() -> None:
    verdict = verify(200, contract_headers(), body({}), RID, [Expect(404, error="not_found")])
    assert not verdict.ok
    assert verdict.message == "expected 404 not_found, got 200"


def test_an_unexpected_error_names_its_code() -> None:
    verdict = verify(500, contract_headers(), error("internal"), RID, [Expect(200)])
    assert verdict.message == "expected 200, got 500 internal"


def test_no_response_is_a_failure() -> None:
    verdict = verify(0, None, None, RID, [Expect(200)])
    assert not verdict.ok
    assert "no response" in verdict.message


def test_a_wrong_error_code_fails() -> None:
    verdict = verify(
        401,
        contract_headers(),
        error("invalid_token"),
        RID,
        [Expect(401, error="invalid_credentials")],
    )
    assert (
        verdict.message
        == "401 invalid_credentials: expected error code 'invalid_credentials', got 'invalid_token'"
    )


def test_an_error_without_the_contract_shape_fails() -> None:
    verdict = verify(
        404,
        contract_headers(),
        body({"detail": "Not Found"}),
        RID,
        [Expect(404, error="not_found")],
    )
    assert not verdict.ok
    assert "error body is not" in verdict.message


def test_the_error_request_id_must_match_the_header() -> None:
    verdict = verify(
        404, contract_headers(), error("not_found", "other"), RID, [Expect(404, error="not_found")]
    )
    assert "request_id" in verdict.message


@pytest.mark.parametrize("name", sorted(SECURITY_HEADERS))
def test_every_security_header_is_required(name: str) -> None:
    headers = contract_headers()
    del headers[name]
    verdict = verify(200, headers, body(USER), RID, [Expect(200)])
    assert verdict.message == f"200: response lacks security header {name}"


def test_a_fixed_security_header_value_is_checked() -> None:
    verdict = verify(
        200, contract_headers(**{"X-Frame-Options": "SAMEORIGIN"}), body(USER), RID, [Expect(200)]
    )
    assert verdict.message == "200: expected X-Frame-Options: DENY, got 'SAMEORIGIN'"


def test_cache_control_may_carry_more_directives_than_no_store() -> None:
    headers = contract_headers(**{"Cache-Control": "no-store, max-age=0"})
    assert verify(200, headers, body(USER), RID, [Expect(200)]).ok


@pytest.mark.parametrize("name", ["Server", "X-Powered-By"])
def test_a_server_software_header_fails(name: str) -> None:
    verdict = verify(200, contract_headers(**{name: "uvicorn"}), body(USER), RID, [Expect(200)])
    assert verdict.message == f"200: response discloses a {name} header"


def test_the_request_id_must_be_echoed() -> None:
    verdict = verify(
        200, contract_headers(request_id="something-else"), body(USER), RID, [Expect(200)]
    )
    assert "X-Request-ID does not echo" in verdict.message


def test_server_timing_needs_an_app_duration() -> None:
    verdict = verify(
        200, contract_headers(**{"Server-Timing": "db;dur=1"}), body(USER), RID, [Expect(200)]
    )
    assert "Server-Timing lacks app" in verdict.message


def test_headers_are_matched_case_insensitively() -> None:
    headers = {key.lower(): value for key, value in contract_headers().items()}
    assert verify(200, headers, body(USER), RID, [Expect(200)]).ok


def test_a_repeated_header_from_geventhttpclient_is_joined() -> None:
    from geventhttpclient.header import Headers

    headers = Headers()
    for key, value in contract_headers().items():
        if key != "Server-Timing":
            headers.add(key, value)
    headers.add("Server-Timing", "db;dur=2")
    headers.add("Server-Timing", "app;dur=3")
    assert header_value(headers, "server-timing") == "db;dur=2, app;dur=3"
    assert verify(200, headers, body(USER), RID, [Expect(200)]).ok


def test_a_required_header_of_an_expected_answer_is_checked() -> None:
    limited = Expect(429, error="rate_limited", headers={"Retry-After": None})
    verdict = verify(429, contract_headers(), error("rate_limited"), RID, [limited])
    assert verdict.message == "429 rate_limited: 429 lacks the Retry-After header"
    assert verify(
        429, contract_headers(**{"Retry-After": "30"}), error("rate_limited"), RID, [limited]
    ).ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [("30", True), ("Wed, 21 Oct 2015 07:28:00 GMT", True), ("soon", False), ("-5", False)],
)
def test_retry_after_must_be_seconds_or_an_http_date(value: str, ok: bool) -> None:
    limited = Expect(429, error="rate_limited", headers={"Retry-After": RETRY_AFTER})
    headers = contract_headers(**{"Retry-After": value})
    verdict = verify(429, headers, error("rate_limited"), RID, [limited])
    assert verdict.ok is ok
    if not ok:
        assert verdict.message.startswith("429 rate_limited: expected Retry-After matching")


def test_one_of_several_answers_is_picked_by_status() -> None:
    expects = [Expect(401, error="invalid_credentials"), Expect(429, error="rate_limited")]
    verdict = verify(401, contract_headers(), error("invalid_credentials"), RID, expects)
    assert verdict.ok
    assert verdict.expect is expects[0]


def test_a_body_that_is_not_json_fails() -> None:
    verdict = verify(200, contract_headers(), b"<html>", RID, [Expect(200)])
    assert "JSON body" in verdict.message


def _problem(expects: list[Expect], data: Any) -> str | None:
    (expect,) = expects
    assert expect.body is not None
    return expect.body(data)


def test_the_contract_file_checks_a_user_answer_keys_and_identity() -> None:
    me = CONTRACT.op("me")
    assert _problem(me.success(), {"id": USER_ID}) == (
        "me answer lacks ['email', 'full_name', 'created_at'] (it has ['id'])"
    )
    other = "6a1e5a1e-0000-4000-8000-000000000000"
    assert _problem(me.success(same_id=other), USER) == (
        "me answer is about another object (id differs)"
    )
    register = CONTRACT.op("register")
    assert _problem(register.success(same_email=" A@Example.com "), USER) is None


def test_the_contract_file_wants_a_bearer_token_with_a_lifetime() -> None:
    login = CONTRACT.op("login")
    good = {
        "access_token": "a.b.c", "token_type": "bearer", "expires_in": 900,
        "refresh_token": "r", "refresh_expires_in": 86400,
    }  # fmt: skip
    assert _problem(login.success(), good) is None
    assert _problem(login.success(), {**good, "refresh_token": ""}) == (
        "login answer's refresh_token is not a non-empty string"
    )
    assert _problem(login.success(), {**good, "token_type": "mac"}) == (
        "login answer has token_type='mac', expected 'bearer'"
    )
    assert _problem(login.success(), {**good, "expires_in": "soon"}) == (
        "login answer's expires_in is not a number"
    )


def test_the_contract_file_compares_the_decision_and_its_tier() -> None:
    check = CONTRACT.op("authz_check")
    data = {"allowed": True, "role": "owner", "source": "L1"}
    assert _problem(check.success(allowed=True), data) is None
    assert _problem(check.success(allowed=False), data) == (
        "expected allowed=false, got allowed=True"
    )
    assert _problem(check.success(allowed=True), {**data, "source": "L9"}) == (
        "authz_check answer has source='L9', expected one of ['L1', 'L2', 'L3', 'db']"
    )


def test_the_contract_file_checks_a_project_answer_is_the_one_asked_for() -> None:
    read = CONTRACT.op("project_read")
    project = {"id": USER_ID, "name": "p", "owner_id": USER_ID, "created_at": "x"}
    assert _problem(read.success(same_id=USER_ID), project) is None
    assert _problem(read.success(same_id="other"), project) == (
        "project_read answer is about another object (id differs)"
    )

"""The contract's authentication section: register, login, refresh, me, logout.

Bodies are Pydantic models that ignore unknown fields but refuse a wrong type (an email as a
number, a password as an object) with 422, never a 500; emails are trimmed and lower-cased
before anything else sees them. Handlers answer ``Response`` objects directly, so FastAPI
skips its response-model encoding on the hot path.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, BaseModel, Field
from starlette.requests import Request

from velro import refresh as refresh_tokens
from velro import users
from velro.errors import ApiError
from velro.headers import CLEAR_SITE_DATA
from velro.security import CurrentUser, client_address, current_user
from velro.services import Services, services

__all__ = ["LoginIn", "RefreshIn", "RegisterIn", "Text", "normalise_email", "router", "text"]

router = APIRouter(prefix="/auth", tags=["auth"])

# RFC 5321 4.5.3.1: a path is at most 256 octets with its brackets, so an address at most 254;
# a local part at most 64. The pattern only asks for "something@domain.tld" without spaces:
# whether the address exists is for a confirmation mail, not a regular expression.
_MAX_EMAIL = 254
_MAX_LOCAL = 64
_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


def text(value: str) -> str:
    """Refuse what JSON allows but no store can keep: lone surrogates (not UTF-8) and NUL.

    ``json.loads`` accepts ``"\\ud800"``; it cannot be encoded for argon2, a Redis key or
    PostgreSQL, and PostgreSQL text cannot hold NUL. A 422 here instead of a 500 later.
    """
    if "\x00" in value:
        raise ValueError("the text contains a NUL character; remove it")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("the text is not valid Unicode (a lone surrogate); send UTF-8") from None
    return value


Text = Annotated[str, AfterValidator(text)]


def normalise_email(value: str) -> str:
    """Trim and lower-case; refuse an address over 254 characters or without user@domain.tld."""
    email = value.strip().lower()
    if len(email) > _MAX_EMAIL:
        raise ValueError(f"the email is {len(email)} characters; give at most {_MAX_EMAIL}")
    if not _EMAIL.fullmatch(email) or len(email.partition("@")[0]) > _MAX_LOCAL:
        raise ValueError("the email is not an address like name@example.com")
    return email


class RegisterIn(BaseModel):
    email: Annotated[str, AfterValidator(text), AfterValidator(normalise_email)]
    # OWASP Authentication Cheat Sheet: at least 8 characters, allow at least 64; the upper
    # bound keeps one request from buying an expensive hash
    password: Text = Field(min_length=8, max_length=128)
    full_name: Text | None = Field(default=None, max_length=200)


class LoginIn(BaseModel):
    # no format check on login: a malformed address is simply an unknown one (401)
    email: Text
    password: Text


class RefreshIn(BaseModel):
    # a token velro issued is 43 characters; anything else is simply unknown (401), but a
    # body that is not even a string of sane length is a malformed request (422)
    refresh_token: Text = Field(min_length=1, max_length=512)


def _token_pair(svc: Services, user_id: str, version: int, refresh_token: str) -> JSONResponse:
    """Login's and refresh's answer: RFC 6749 5.1, beside the contract's fields."""
    return JSONResponse(
        {
            "access_token": svc.tokens.issue(user_id, version),
            "token_type": "bearer",
            "expires_in": svc.tokens.ttl_s,
            "refresh_token": refresh_token,
            "refresh_expires_in": svc.settings.refresh_token_ttl_s,
        },
        headers={"Pragma": "no-cache"},  # RFC 6749 5.1, beside Cache-Control: no-store
    )


@router.post("/register", status_code=201)
async def register(body: RegisterIn, svc: Annotated[Services, Depends(services)]) -> JSONResponse:
    record = await users.register(svc, body.email, body.password, body.full_name)
    return JSONResponse(users.public(record), status_code=201)


@router.post("/login")
async def login(
    body: LoginIn, request: Request, svc: Annotated[Services, Depends(services)]
) -> JSONResponse:
    email = body.email.strip().lower()
    address = client_address(request)
    # refused before any hashing: a locked-out account costs no argon2 time
    await svc.limiter.check(email, address)
    found = await users.authenticate(svc, email, body.password)
    if found is None:
        await svc.limiter.record_failure(email, address)
        # one body for "no such account" and "wrong password" (no account enumeration)
        raise ApiError(401, "invalid_credentials", "The email or the password is wrong.")
    user_id, version = found
    return _token_pair(svc, user_id, version, await refresh_tokens.issue(svc, user_id))


@router.post("/refresh")
async def refresh(body: RefreshIn, svc: Annotated[Services, Depends(services)]) -> JSONResponse:
    # no rate limit: 256 random bits are not guessed, and a refusal costs one indexed read
    rotated, token = await refresh_tokens.rotate(svc, body.refresh_token)
    return _token_pair(svc, rotated.user_id, rotated.token_version, token)


@router.get("/me")
async def me(request: Request) -> JSONResponse:
    # The hot path of token authentication: the caller is read here rather than through a
    # FastAPI dependency, whose resolution is a measurable share of this route's CPU (as the
    # bare endpoint it is compared with does; README, "Throughput beside a bare endpoint").
    return JSONResponse(users.public(await current_user(request)))


@router.post("/logout", status_code=204)
async def logout(user: CurrentUser, request: Request) -> Response:
    svc: Services = request.app.state.services
    await users.logout(svc, user["id"])
    return Response(status_code=204, headers={"Clear-Site-Data": CLEAR_SITE_DATA})

"""FastAPI dependencies: the signed-in user from a bearer token, a service key, the client.

``current_user`` is the hot path of ``GET /auth/me``: it parses the header, verifies the JWT
with the app's one ``TokenCodec`` and reads the user record through the tiered cache, so a
warm call makes no database call. Every way a token can be wrong answers the same 401
``invalid_token`` with ``WWW-Authenticate`` (RFC 6750, section 3).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from velro import users
from velro.errors import ApiError
from velro.services import Services
from velro.tokens import InvalidToken

__all__ = [
    "CurrentUser",
    "ServiceKeyId",
    "client_address",
    "current_user",
    "service_key",
]

# RFC 6750 3.1: no error code when the request carried no credentials at all
_CHALLENGE_MISSING = {"WWW-Authenticate": "Bearer"}
_CHALLENGE_INVALID = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def _invalid_token(message: str, missing: bool = False) -> ApiError:
    return ApiError(
        401,
        "invalid_token",
        message,
        _CHALLENGE_MISSING if missing else _CHALLENGE_INVALID,
    )


async def current_user(request: Request) -> users.UserRecord:
    """The user the bearer token names, if the token is valid and not revoked by logout."""
    header = request.headers.get("authorization")
    if not header:
        raise _invalid_token("Send an access token: Authorization: Bearer <token>.", True)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _invalid_token("The Authorization header is not 'Bearer <token>'.")
    svc: Services = request.app.state.services
    try:
        claims = svc.tokens.verify(token)
    except InvalidToken:
        raise _invalid_token("The access token is invalid or expired; log in again.") from None
    record = await users.cached_user(svc, claims.sub)
    if record is None or record["token_version"] != claims.ver:
        # the account is gone, or logout revoked every token issued before it
        raise _invalid_token("The access token was revoked; log in again.")
    return record


CurrentUser = Annotated[users.UserRecord, Depends(current_user)]


async def service_key(request: Request) -> str:
    """The id of the valid ``X-Service-Key``, else 401 ``invalid_service_key``."""
    svc: Services = request.app.state.services
    key_id = await svc.service_keys.check(svc, request.headers.get("x-service-key"))
    if key_id is None:
        raise ApiError(
            401,
            "invalid_service_key",
            "Send a valid, unrevoked key in X-Service-Key (velro keys create --name NAME).",
        )
    return key_id


ServiceKeyId = Annotated[str, Depends(service_key)]


def client_address(request: Request) -> str:
    """The client's address as uvicorn saw it.

    uvicorn replaces the peer address with ``X-Forwarded-For`` only when the peer is listed in
    ``--forwarded-allow-ips`` (default 127.0.0.1): behind a trusted proxy this is the real
    client; a caller from elsewhere cannot choose the address it is limited by.
    """
    client = request.client
    return client.host if client is not None else "unknown"

"""Bad bearer tokens the contract says must be refused with 401 `invalid_token`."""

from __future__ import annotations

import base64
import json

__all__ = ["BAD_TOKEN_KINDS", "alg_none", "bad_token", "tampered"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def tampered(token: str) -> str:
    """The same token with one claim changed and the old signature kept (RFC 7515 §5.2
    verification must fail)."""
    header, payload, signature = token.split(".")
    claims = json.loads(_unb64(payload))
    claims["sub"] = "00000000-0000-4000-8000-000000000000"
    return f"{header}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}.{signature}"


def alg_none(token: str) -> str:
    """The token's claims re-issued unsigned with `alg: none` (RFC 7519 §6; the classic
    CVE-2015-9235 family of bypasses)."""
    _, payload, _ = token.split(".")
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}, separators=(",", ":")).encode())
    return f"{header}.{payload}."


BAD_TOKEN_KINDS = ("missing", "malformed", "tampered", "alg_none")


def bad_token(kind: str, good: str) -> str | None:
    """A bad token of `kind` derived from a good one; None means send no Authorization."""
    if kind == "missing":
        return None
    if kind == "malformed":
        return "not-a-jwt"
    if kind == "tampered":
        return tampered(good)
    if kind == "alg_none":
        return alg_none(good)
    raise ValueError(f"unknown bad token kind {kind!r}; use one of {BAD_TOKEN_KINDS}")

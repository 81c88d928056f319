"""Access tokens: HS256 JWTs with ``sub``, ``exp``, ``iat``, ``aud``, ``iss``, ``jti``, ``ver``.

``ver`` is the user's ``token_version`` when the token was issued; logout bumps the version,
so every earlier token stops matching (checked by ``velro.security``).

The accepted algorithm is pinned to HS256 (RFC 8725, section 3.1: never let the token pick
its own algorithm), so ``alg: none`` and algorithm-confusion tokens are refused, and every
claim is required. The codec is built once per app: nothing on the verify path is created per
request except what PyJWT itself allocates.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from velro.settings import Settings

__all__ = ["ALGORITHM", "Claims", "InvalidToken", "TokenCodec"]

ALGORITHM = "HS256"
_ALGORITHMS = [ALGORITHM]
_REQUIRED = ["sub", "exp", "iat", "aud", "iss", "jti", "ver"]


class InvalidToken(Exception):
    """The token is missing, malformed, expired, tampered or signed another way."""


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    ver: int


class TokenCodec:
    def __init__(self, settings: Settings) -> None:
        self._key = settings.jwt_secret
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self.ttl_s = settings.token_ttl_s
        self._jwt = jwt.PyJWT()
        self._options: Any = {"require": _REQUIRED, "strict_aud": True}

    def issue(self, user_id: str, version: int, *, now: float | None = None) -> str:
        iat = int(time.time() if now is None else now)
        payload = {
            "sub": user_id,
            "iat": iat,
            "exp": iat + self.ttl_s,
            "aud": self._audience,
            "iss": self._issuer,
            "jti": uuid.uuid4().hex,
            "ver": version,
        }
        return self._jwt.encode(payload, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> Claims:
        """The token's claims, or ``InvalidToken`` for anything but a valid, current token."""
        try:
            payload = self._jwt.decode(
                token,
                self._key,
                algorithms=_ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                options=self._options,
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        sub = payload["sub"]
        ver = payload["ver"]
        if not isinstance(sub, str) or type(ver) is not int:
            raise InvalidToken("sub must be a string and ver a whole number")
        return Claims(sub=sub, ver=ver)

"""Credentials: JWT issue and verify, argon2id verify at the OWASP minimum.

The token codec and the hasher are the app's own (``velro.tokens``, ``velro.passwords``),
built from default settings; only the secret is fixed. argon2id is measured on its blocking
primitive, the part a worker runs: the executor hop around it is measured in
``test_executor.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from velro.executor import Executor
from velro.passwords import Passwords
from velro.tokens import ALGORITHM, TokenCodec

from .conftest import JWT_SECRET

USER_ID = "7b0f0d5e-2f4c-4c7e-9a59-6f1f5c6d2b11"


@pytest.fixture(scope="module")
def codec(make_settings: Any) -> TokenCodec:
    return TokenCodec(make_settings())


@pytest.fixture(scope="module")
def passwords(make_settings: Any) -> Iterator[Passwords]:
    settings = make_settings()  # the defaults: the OWASP minimum, m=19 MiB, t=2, p=1
    assert (settings.argon2_memory_kib, settings.argon2_time_cost) == (19456, 2)
    assert settings.argon2_parallelism == 1
    executor = Executor(1, {"db": 5.0, "hash": 5.0})
    yield Passwords(settings, executor)
    executor.shutdown()


def test_jwt_issue(benchmark: Any, codec: TokenCodec) -> None:
    """Sign one access token (HS256, seven claims)."""
    benchmark.extra_info.update(anchor=None, tier="jwt")
    token = benchmark(codec.issue, USER_ID, 3)
    assert codec.verify(token).sub == USER_ID


def test_jwt_verify_anchor_pyjwt(benchmark: Any, codec: TokenCodec) -> None:
    """Physical anchor: PyJWT's own decode of the same token, signature and claims."""
    token = codec.issue(USER_ID, 3)
    benchmark.extra_info.update(anchor=None, tier="jwt")
    payload = benchmark(
        jwt.decode, token, JWT_SECRET, algorithms=[ALGORITHM], audience="velro-api", issuer="velro"
    )
    assert payload["sub"] == USER_ID


def test_jwt_verify(benchmark: Any, codec: TokenCodec) -> None:
    """Verify one access token: signature, expiry, audience, issuer, every claim present."""
    token = codec.issue(USER_ID, 3)
    benchmark.extra_info.update(anchor="test_jwt_verify_anchor_pyjwt", tier="jwt")
    claims = benchmark(codec.verify, token)
    assert (claims.sub, claims.ver) == (USER_ID, 3)


def test_argon2id_verify(benchmark: Any, passwords: Passwords, rounds: Any) -> None:
    """One argon2id verify of the right password at m=19 MiB, t=2, p=1 (about 18 ms a core)."""
    stored = passwords.hash_sync("correct horse battery staple")
    assert "$argon2id$" in stored
    assert "m=19456,t=2,p=1" in stored
    benchmark.extra_info.update(anchor=None, tier="hash", parameters="m=19456,t=2,p=1")
    ok = benchmark.pedantic(
        passwords.verify_sync, args=(stored, "correct horse battery staple"), rounds=rounds(20)
    )
    assert ok is True
    assert passwords.verify_sync(stored, "wrong password") is False

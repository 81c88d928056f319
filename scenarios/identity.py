"""Names that must never collide: registration emails and request ids.

Emails are unique across Locust worker processes (and machines, and runs): the process tag
holds the pid and 32 random bits, the counter orders the emails of one process, and a random
suffix guards against a reused pid with an unlucky tag.
"""

from __future__ import annotations

import itertools
import os
import secrets

__all__ = ["EMAIL_DOMAIN", "IdentitySource"]

# example.com is reserved for documentation (RFC 2606) yet passes email validators that
# reject special-use names such as .test or .invalid
EMAIL_DOMAIN = "example.com"


class IdentitySource:
    """Per-process source of unique emails and X-Request-ID values."""

    def __init__(self, pid: int | None = None) -> None:
        self._fixed_pid = pid
        self._pid = -1
        self._tag = ""
        self._emails = itertools.count(1)
        self._requests = itertools.count(1)
        self._addresses = itertools.count(1)

    @property
    def tag(self) -> str:
        # `locust --processes N` forks after importing the locustfile: a child must not keep
        # its parent's tag, so the tag is renewed whenever the pid changes
        pid = self._fixed_pid if self._fixed_pid is not None else os.getpid()
        if pid != self._pid:
            self._pid = pid
            self._tag = f"{pid:x}{secrets.token_hex(4)}"
            self._emails = itertools.count(1)
            self._requests = itertools.count(1)
        return self._tag

    def email(self, kind: str = "reg") -> str:
        """`reg-<pid+random>-<n>-<random>@example.com`: unique across processes and runs."""
        tag = self.tag
        return f"{kind}-{tag}-{next(self._emails)}-{secrets.token_hex(3)}@{EMAIL_DOMAIN}"

    def client_address(self) -> str:
        """A loopback address (127.0.0.0/8) of its own for each simulated user."""
        n = next(self._addresses) + (os.getpid() % 200) * 65_536
        return f"127.{(n >> 16) % 254 + 1}.{(n >> 8) % 256}.{n % 256}"

    def request_id(self) -> str:
        """An X-Request-ID matching ^[A-Za-z0-9._-]{1,64}$ so the server must echo it."""
        tag = self.tag
        return f"vp-{tag}-{next(self._requests)}"

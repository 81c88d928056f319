"""URL policy: load stays on this machine, and passwords stay out of shared files."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

from velro_perf.errors import UsageError

__all__ = ["is_loopback_url", "redact_url", "require_loopback"]


def is_loopback_url(url: str) -> bool:
    """True when `url` is http(s) to 127.0.0.0/8, ::1 or localhost."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return False
    host = parts.hostname
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_loopback(url: str) -> str:
    """The target without a trailing slash, or UsageError when it is not on this machine."""
    if not is_loopback_url(url):
        raise UsageError(
            f"target {url!r} is not a loopback address; load stays on this machine: "
            "give http://127.0.0.1:PORT, http://localhost:PORT or http://[::1]:PORT"
        )
    return url.rstrip("/")


def redact_url(url: str) -> str:
    """`url` without its password, for files a person may share."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))

"""Ports on this machine: the suite's one way to find a free one, and to check a given one."""

from __future__ import annotations

import socket

from velro_perf.errors import UsageError

__all__ = ["check_port_free", "free_port"]


def check_port_free(port: int, host: str = "127.0.0.1") -> None:
    """UsageError when `port` cannot be bound on `host` (another process holds it)."""
    if not 0 < port < 65536:
        raise UsageError(f"port {port} is out of range; give a port between 1 and 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as uvicorn binds: connections of an earlier server in TIME_WAIT do not hold the port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"port {port} on {host} is already in use ({exc.strerror}); "
                "give another --port or leave it out to pick a free one"
            ) from exc


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS's pick); the suite's one way to find one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])

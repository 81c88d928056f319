"""Every error the reference service raises on purpose.

VelroError
├── ServiceConfigError  a bad setting; the message names the variable and the fix
├── OperationTimeout    a blocking call outlived its per-operation timeout (executor)
└── ApiError            answered to the client in the contract's one error shape
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ApiError", "OperationTimeout", "ServiceConfigError", "VelroError"]


class VelroError(Exception):
    """Base of every error raised on purpose by velro."""


class ServiceConfigError(VelroError):
    """A setting is missing or malformed."""


class OperationTimeout(VelroError):
    """A call through the executor took longer than its kind's timeout."""

    def __init__(self, kind: str, timeout_s: float) -> None:
        super().__init__(f"{kind} operation exceeded its {timeout_s:g} s timeout")
        self.kind = kind
        self.timeout_s = timeout_s


class ApiError(VelroError):
    """An error answered as ``{"error": {"code", "message", "request_id"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"The {what} does not exist or you may not see it.")


def invalid_request(message: str) -> ApiError:
    return ApiError(422, "invalid_request", message)

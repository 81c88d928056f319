"""The errors of the `velro-perf` command line, each mapped to its exit code.

Every error a user can cause is one of these; the command line prints its message (which
names the bad value and the fix) and exits with its code, never with a traceback::

    VelroPerfError                  exit 2 unless a subclass says otherwise
    ├── UsageError                  2  bad arguments: a non-loopback target, a port in use
    ├── ConfigError                 2  bad configuration: a budget file, a shape, a database
    ├── TargetError                 3  the target could not be used: the run is invalid
    │   ├── TargetUnreachableError  3  nothing answers at the target URL
    │   └── ServiceStartError       3  the reference service did not start or became unhealthy
    └── RunInterrupted              3  Ctrl-C or SIGTERM: what was measured is kept, incomplete

Exit codes 0 (every budget passes) and 1 (a budget fails or is inconclusive) are verdicts,
not errors: they come from the run's summary (`reports.runfiles.Verdict`, docs/run-format.md).
"""

from __future__ import annotations

# 0, 1 and 3 are a judged run's verdicts, defined beside them in reports/runfiles.py
from velro_perf.reports.runfiles import EXIT_FAIL, EXIT_INVALID, EXIT_PASS

__all__ = [
    "EXIT_FAIL",
    "EXIT_INVALID",
    "EXIT_PASS",
    "EXIT_USAGE",
    "ConfigError",
    "RunInterrupted",
    "ServiceStartError",
    "TargetError",
    "TargetUnreachableError",
    "UsageError",
    "VelroPerfError",
]

EXIT_USAGE = 2


class VelroPerfError(Exception):
    """A user-facing error: its message is printed as is, and `exit_code` is returned."""

    exit_code = EXIT_USAGE


class UsageError(VelroPerfError):
    """The command line asked for something the suite refuses to do."""


class ConfigError(VelroPerfError):
    """A configuration file or setting is invalid or cannot be used."""


class TargetError(VelroPerfError):
    """The system under test could not be measured, so there is no valid run."""

    exit_code = EXIT_INVALID


class TargetUnreachableError(TargetError):
    """Nothing answered at the target URL."""


class ServiceStartError(TargetError):
    """The reference service failed to initialise, seed or become healthy."""


class RunInterrupted(VelroPerfError):
    """The run was stopped by a signal; `reason` is `SIGINT`, `SIGTERM` or `crash: ...`."""

    exit_code = EXIT_INVALID

    def __init__(self, reason: str) -> None:
        super().__init__(f"run interrupted ({reason})")
        self.reason = reason

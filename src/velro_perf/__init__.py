"""velro-perf: the suite's command line. It wires the reference service, Locust and the
reports package together; the figures and verdicts come from reports/, the load from
locustfile.py and scenarios/.
"""

from velro_perf.cli import main
from velro_perf.errors import (
    ConfigError,
    RunInterrupted,
    ServiceStartError,
    TargetError,
    TargetUnreachableError,
    UsageError,
    VelroPerfError,
)

__all__ = [
    "ConfigError",
    "RunInterrupted",
    "ServiceStartError",
    "TargetError",
    "TargetUnreachableError",
    "UsageError",
    "VelroPerfError",
    "main",
]

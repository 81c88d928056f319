"""velro-perf: the suite's command line. It wires the reference service, Locust and the
reports package together; the figures and verdicts come from reports/, the load from
locustfile.py and scenarios/. Its errors, each with its exit code, are in velro_perf/errors.py.
"""

from velro_perf.cli import main
from velro_perf.errors import VelroPerfError

__all__ = ["VelroPerfError", "main"]

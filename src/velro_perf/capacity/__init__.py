"""`velro-perf capacity`: the largest load a backend holds within its budgets (docs/capacity.md).

runner.py steers one Locust run through the steps; search.py picks each level; steps.py judges
a step's hold by the gate's own code (reports.window); cpu.py reads the CPU split from /proc;
laws.py applies the operational laws; report.py writes the answer.
"""

from __future__ import annotations

from velro_perf.capacity.options import CapacityOptions
from velro_perf.capacity.runner import execute_capacity
from velro_perf.capacity.search import Outcome, Search

__all__ = ["CapacityOptions", "Outcome", "Search", "execute_capacity"]

"""Locust load scenarios of the Velro performance suite: they talk HTTP only.

The public surface re-exported here is the pure part (checks, shapes, workload, seed,
Server-Timing, recorder, open model), importable without starting gevent's monkey
patching. The Locust users and event hooks live in `scenarios.users` and
`scenarios.hooks`, imported by locustfile.py.
"""

from __future__ import annotations

from velro_perf.scenarios.checks import SECURITY_HEADERS, Checked, Expect, verify
from velro_perf.scenarios.errors import ProvisioningError, ScenarioConfigError, ScenarioError
from velro_perf.scenarios.identity import IdentitySource
from velro_perf.scenarios.openmodel import OpenModel, combine_reports
from velro_perf.scenarios.recorder import COLUMNS, SampleRecorder
from velro_perf.scenarios.seed import Seed, SeedUser, load_seed, parse_seed
from velro_perf.scenarios.servertiming import ServerTiming, parse_server_timing
from velro_perf.scenarios.shapes import Shape, Stage, load_shapes, parse_shapes
from velro_perf.scenarios.workload import CATEGORIES, Workload, load_workload, parse_workload

__all__ = [
    "CATEGORIES",
    "COLUMNS",
    "SECURITY_HEADERS",
    "Checked",
    "Expect",
    "IdentitySource",
    "OpenModel",
    "ProvisioningError",
    "SampleRecorder",
    "ScenarioConfigError",
    "ScenarioError",
    "Seed",
    "SeedUser",
    "ServerTiming",
    "Shape",
    "Stage",
    "Workload",
    "combine_reports",
    "load_seed",
    "load_shapes",
    "load_workload",
    "parse_seed",
    "parse_server_timing",
    "parse_shapes",
    "parse_workload",
    "verify",
]

"""The locustfile's own command-line options (`events.init_command_line_parser`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velro_perf.scenarios.errors import ScenarioConfigError
from velro_perf.scenarios.openmodel import (
    DEFAULT_LATE_S,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_LATE_SHARE,
)
from velro_perf.suitedata import data_root

__all__ = [
    "DEFAULT_API",
    "DEFAULT_HEARTBEAT_LIVENESS",
    "DEFAULT_WORKLOAD",
    "Options",
    "add_arguments",
    "resolve",
]


def add_arguments(parser: Any) -> None:
    """Every ``--velro-*`` option, in the order ``--help`` lists them."""
    _add_run_arguments(parser)
    _add_open_model_arguments(parser)
    _add_generator_arguments(parser)


def _add_run_arguments(parser: Any) -> None:
    """What to run, against what, and where it goes."""
    parser.add_argument(
        "--velro-shape", default="smoke", help="load shape name from the shapes file"
    )
    parser.add_argument(
        "--velro-shapes",
        default="fixtures/shapes.toml",
        help="shapes file (TOML), see scenarios/shapes.py",
    )
    parser.add_argument(
        "--velro-workload",
        default="",
        help="workload weights file (TOML); default: the shape's own, else fixtures/workload.toml",
    )
    parser.add_argument(
        "--velro-api",
        default=DEFAULT_API,
        help="API file (TOML) describing the target's operations, see docs/api-file.md",
    )
    parser.add_argument(
        "--velro-out",
        default="",
        help="run directory for the samples and friends; empty: record nothing",
    )
    parser.add_argument(
        "--velro-samples",
        default="exact",
        choices=("exact", "histogram", "both"),
        help="exact: one row per request (samples/); histogram: per second and endpoint an "
        "HdrHistogram of 3 significant digits (histograms/), for rates past the master's "
        "ceiling (docs/performance-scale.md); both: the two of the same requests",
    )
    parser.add_argument(
        "--velro-capacity-plan",
        default="",
        help="capacity search: a JSON file the runner rewrites with the level to hold next "
        "(users, spawn rate, open-model rate); it replaces the shape's stages",
    )
    parser.add_argument(
        "--velro-fixtures",
        default="",
        help="fixtures JSON from `velro seed --out`; empty: provision the seed through the API",
    )
    parser.add_argument(
        "--velro-seed",
        default="",
        help="USERS,TEAMS,PROJECTS: the seed to provision through the API instead of the "
        "shape's sizes (velro-perf capacity against a --target)",
    )
    parser.add_argument(
        "--velro-users-file",
        default="",
        help="CSV of existing users (email,password[,id]) to sign in as instead of creating "
        "users; see scenarios/usersfile.py",
    )


def _add_open_model_arguments(parser: Any) -> None:
    """The open model's rate and its bounds (scenarios/openmodel.py)."""
    parser.add_argument(
        "--velro-open-rate",
        type=float,
        default=0.0,
        help="open model: total requests per second on a fixed schedule (0: closed model)",
    )
    parser.add_argument(
        "--velro-open-max-in-flight",
        type=int,
        default=DEFAULT_MAX_IN_FLIGHT,
        help="open model: requests in flight at once per process, at most (k6's maxVUs)",
    )
    parser.add_argument(
        "--velro-open-late-s",
        type=float,
        default=DEFAULT_LATE_S,
        help="open model: a request that starts this many seconds after its slot is late",
    )
    parser.add_argument(
        "--velro-open-max-late-share",
        type=float,
        default=DEFAULT_MAX_LATE_SHARE,
        help="open model: more late starts than this share make the run invalid",
    )


def _add_generator_arguments(parser: Any) -> None:
    """The service key the users send, and how the generator's processes keep alive and
    collect garbage."""
    parser.add_argument(
        "--velro-service-key",
        default="",
        env_var="VELRO_PERF_SERVICE_KEY",
        is_secret=True,
        help="X-Service-Key when no fixtures file gives one; none: service-key users off",
    )
    parser.add_argument(
        "--velro-heartbeat-liveness",
        type=int,
        default=DEFAULT_HEARTBEAT_LIVENESS,
        env_var="VELRO_PERF_HEARTBEAT_LIVENESS",
        help="master: heartbeats (1 s each) a worker may miss before it is marked missing "
        "(Locust's default is 3)",
    )
    parser.add_argument(
        "--velro-gc-rss-limit-mb",
        type=float,
        default=2048.0,
        help="collect anyway when a generator process grows past this RSS while its GC is off",
    )


DEFAULT_WORKLOAD = "fixtures/workload.toml"
# a worker that shares 2 cores with the service it loads can be starved for seconds without
# being dead; Locust's 3 s made one lose its users mid-run (and keep running them)
DEFAULT_HEARTBEAT_LIVENESS = 10
# the contract of CONTRACT.md, which the reference service serves: the first API file
DEFAULT_API = "targets/contract.toml"


def resolve(path: str) -> Path:
    """A path as given if it exists or is absolute, else one of the suite's own data files
    (``fixtures/...``, ``targets/...``), wherever the suite is installed, not wherever locust
    runs. suitedata is a leaf of the standard library alone: reading it keeps scenarios
    free of the runner."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    return (data_root() / candidate).resolve()


@dataclass(frozen=True)
class Options:
    shape: str
    shapes_file: Path
    workload_file: Path | None  # None: the shape's own workload, else fixtures/workload.toml
    api_file: Path
    out: str
    fixtures: str
    open_rate: float
    service_key: str
    gc_rss_limit_mb: float
    heartbeat_liveness: int = DEFAULT_HEARTBEAT_LIVENESS
    open_max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    open_late_s: float = DEFAULT_LATE_S
    open_max_late_share: float = DEFAULT_MAX_LATE_SHARE
    capacity_plan: str = ""  # velro-perf capacity: the level comes from this file
    samples: str = "exact"
    users_file: str = ""  # a CSV of users to sign in as; "": create them (or --velro-fixtures)
    seed: tuple[int, int, int] | None = None  # users, teams, projects; None: the shape's

    @classmethod
    def from_parsed(cls, parsed: Any) -> Options:
        """Read the options from Locust's parsed_options (defaults when absent, as in tests
        that build an Environment without a parser)."""

        def get(name: str, default: Any) -> Any:
            value = getattr(parsed, name, None) if parsed is not None else None
            return default if value is None else value

        rate = float(get("velro_open_rate", 0.0) or 0.0)
        if rate < 0:
            raise ScenarioConfigError(
                f"--velro-open-rate is {rate:g}; give requests per second above 0 "
                "(or 0 for the closed model)"
            )
        liveness = int(get("velro_heartbeat_liveness", DEFAULT_HEARTBEAT_LIVENESS))
        if liveness < 1:
            raise ScenarioConfigError(
                f"--velro-heartbeat-liveness is {liveness}; give the number of 1-s heartbeats a "
                "worker may miss, 1 or more"
            )
        in_flight = int(get("velro_open_max_in_flight", DEFAULT_MAX_IN_FLIGHT))
        late_s = float(get("velro_open_late_s", DEFAULT_LATE_S))
        late_share = float(get("velro_open_max_late_share", DEFAULT_MAX_LATE_SHARE))
        if in_flight < 1:
            raise ScenarioConfigError(
                f"--velro-open-max-in-flight is {in_flight}; give 1 or more requests"
            )
        if late_s <= 0 or not 0 <= late_share <= 1:
            raise ScenarioConfigError(
                f"--velro-open-late-s is {late_s:g} and --velro-open-max-late-share "
                f"{late_share:g}; give seconds above 0 and a share from 0 to 1"
            )
        workload = str(get("velro_workload", ""))
        samples = str(get("velro_samples", "exact"))
        if samples not in ("exact", "histogram", "both"):
            raise ScenarioConfigError(
                f"--velro-samples is {samples!r}; give exact, histogram or both"
            )
        return cls(
            seed=_seed_sizes(str(get("velro_seed", ""))),
            shape=str(get("velro_shape", "smoke")),
            shapes_file=resolve(str(get("velro_shapes", "fixtures/shapes.toml"))),
            workload_file=resolve(workload) if workload else None,
            api_file=resolve(str(get("velro_api", DEFAULT_API) or DEFAULT_API)),
            out=str(get("velro_out", "")),
            fixtures=str(get("velro_fixtures", "")),
            open_rate=rate,
            service_key=str(get("velro_service_key", "")),
            gc_rss_limit_mb=float(get("velro_gc_rss_limit_mb", 2048.0)),
            heartbeat_liveness=liveness,
            open_max_in_flight=in_flight,
            open_late_s=late_s,
            open_max_late_share=late_share,
            capacity_plan=str(get("velro_capacity_plan", "")),
            samples=samples,
            users_file=str(get("velro_users_file", "")),
        )


def _seed_sizes(text: str) -> tuple[int, int, int] | None:
    """``--velro-seed USERS,TEAMS,PROJECTS``; None when not given."""
    if not text:
        return None
    parts = text.split(",")
    try:
        users, teams, projects = (int(part) for part in parts)
    except ValueError:
        users = teams = projects = -1
    if len(parts) != 3 or users < 1 or teams < 0 or projects < 0:
        raise ScenarioConfigError(
            f"--velro-seed is {text!r}; give USERS,TEAMS,PROJECTS, whole numbers, e.g. 200,20,600"
        )
    return users, teams, projects

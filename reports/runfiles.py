"""The typed model of a run's files (docs/run-format.md): config.json, meta.json, summary.json.

Every reader of these files, in reports/ and in velro_perf, takes these types rather than
``dict[str, Any]``, so that mypy names each place a key is read. The types are ``TypedDict``s:
at run time a summary is still the plain dict that ``json.loads`` gives back, so the files'
format does not change and old files still load. The verdicts are ``StrEnum``s: a member
compares equal to, and is written to JSON as, its string (``Verdict.PASS == "pass"``).

To add a field to a file:

1. add it here, to the file's ``TypedDict``, with a line on what it means; a field that files
   written before it lack is ``NotRequired[...]`` and is read with ``.get``;
2. write it where the file is written: ``summarize_data`` in reports/analysis.py for
   summary.json, ``velro_perf/runplan.py`` and ``runexec.py`` for config.json and meta.json;
3. describe it in docs/run-format.md.

``read_summary`` treats a summary.json without every required key of ``Summary`` (one written
by an older gate) as absent, so that the report judges the run again rather than fill holes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast

from reports.errors import RunDirError

__all__ = [
    "EXIT_FAIL",
    "EXIT_INVALID",
    "EXIT_PASS",
    "ApiDescribed",
    "ApiNamed",
    "BudgetResult",
    "BudgetVerdict",
    "EndpointRow",
    "GeneratorHealth",
    "HealthEvent",
    "LocustFigures",
    "MicrobenchResult",
    "OpenModelFigures",
    "PhaseRow",
    "RunConfig",
    "RunMeta",
    "StallFigures",
    "StallRow",
    "Summary",
    "Verdict",
    "WorkerHealth",
    "read_config",
    "read_json",
    "read_meta",
    "read_summary",
]

# The exit codes of a judged run (0, 1, 3); 2 is bad usage, the command line's own.
EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_INVALID = 3


class BudgetVerdict(StrEnum):
    """One budget's verdict (analysis.py says when each is given)."""

    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    NO_DATA = "no_data"
    NOT_APPLICABLE = "not_applicable"

    @property
    def severity(self) -> int:
        """Worst first: the order in which a requirement's budgets decide its line."""
        return _SEVERITY.index(self)


_SEVERITY = [
    BudgetVerdict.FAIL,
    BudgetVerdict.INCONCLUSIVE,
    BudgetVerdict.PASS,
    BudgetVerdict.NO_DATA,
    BudgetVerdict.NOT_APPLICABLE,
]


class Verdict(StrEnum):
    """A run's verdict; ``exit_code`` is what `velro-perf run` and `gate` exit with."""

    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    INVALID = "invalid"

    @property
    def exit_code(self) -> int:
        return _EXIT[self]

    @classmethod
    def of(cls, budgets: Iterable[str], *, invalid: bool) -> Verdict:
        """The run's verdict from its budgets' verdicts: invalid over fail over inconclusive
        over pass; nothing judged at all is inconclusive, never a silent pass."""
        judged = set(budgets)
        if invalid:
            return cls.INVALID
        if BudgetVerdict.FAIL in judged:
            return cls.FAIL
        if BudgetVerdict.PASS in judged and BudgetVerdict.INCONCLUSIVE not in judged:
            return cls.PASS
        return cls.INCONCLUSIVE

    @classmethod
    def parse(cls, value: object) -> Verdict:
        """The verdict a file names; an unknown one is INVALID (it cannot be trusted)."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.INVALID


_EXIT = {
    Verdict.PASS: EXIT_PASS,
    Verdict.FAIL: EXIT_FAIL,
    Verdict.INCONCLUSIVE: EXIT_FAIL,
    Verdict.INVALID: EXIT_INVALID,
}


# ---------------------------------------------------------------- config.json and meta.json


class SeedSize(TypedDict):
    users: int
    teams: int
    projects: int


class ApiDescribed(TypedDict, total=False):
    """config.json `api`: what the run's API file (docs/api-file.md) described."""

    name: str
    sha256: str  # of the file's bytes: part of the configuration hash
    promises: list[str]  # the checks CONTRACT.md adds, where the backend promises them
    operations: dict[str, str]  # operation -> endpoint, "METHOD name" as samples.csv has it
    lacks: dict[str, str]  # operation the backend lacks -> why


class ApiNamed(TypedDict):
    """summary.json `api`: the API file the run drove, named with its hash."""

    name: str | None
    file: str | None
    sha256: str | None


class RunConfig(TypedDict, total=False):
    """config.json: what was run. Every key may be absent (a target's own run folder)."""

    run_id: str
    shape: str
    target: str  # "reference" or the external target's URL
    target_url: str | None
    service_profile: str  # degraded | fixed | external
    processes: int
    open_model_rate: float | None
    api_file: str  # the API file the scenarios drove (targets/contract.toml by default)
    api: ApiDescribed
    budgets_file: str
    budgets_sha256: str | None
    shapes_file: str
    shapes_sha256: str | None
    workload_file: str
    workload_sha256: str | None
    seed: SeedSize
    warmup_s: float
    service_workers: int | None
    access_token_ttl_s: int | None  # the shape's, given to the reference service
    database: str | None
    database_url: str | None
    redis: str | None
    redis_url: str | None
    redis_prefix: str | None
    config_hash: str  # SHA-256 of the canonical JSON of the run-independent fields


class RunMeta(TypedDict, total=False):
    """meta.json: when and where it was run, and how it ended."""

    run_id: str
    started_at: str  # ISO 8601 UTC
    ended_at: str | None
    measured_from: float | None  # epoch seconds: the end of warm-up
    complete: bool  # false until the run ended normally
    interrupted: str | None  # SIGINT, SIGTERM, "crash: ...", "error: ..."
    git: dict[str, Any]
    versions: dict[str, Any]
    machine: dict[str, Any]
    generator: dict[str, Any]  # what the runner did to the load generator
    scraper: dict[str, Any]


# ---------------------------------------------------------------- summary.json


class BudgetResult(TypedDict):
    """One budget of fixtures/budgets.toml judged on one run."""

    id: str
    requirement: str
    description: str
    kind: str
    bound: dict[str, float]  # {"max": 50.0} or {"min": 0.95}
    bound_text: str  # as the PRD states it: "< 50 ms"
    percentile: float | None
    measured: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    samples: int
    verdict: BudgetVerdict
    note: str  # where the figure came from, or why there is none
    sentence: NotRequired[str]  # the line a stakeholder reads
    outside_prd: NotRequired[bool]  # a budget of the suite's own, not one of the PRD's rows


class LocustFigures(TypedDict, total=False):
    """Locust's own rounded percentiles of one endpoint, for comparison with the exact ones."""

    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    p999: float | None
    max: float | None


class EndpointRow(TypedDict):
    """The exact latency percentiles (ms) of one endpoint after warm-up."""

    endpoint: str
    category: str
    requests: int
    failures: int
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    p999: float | None
    max: float
    locust: LocustFigures


class HealthEvent(TypedDict, total=False):
    """One thing Locust's master saw go wrong (generator_health.json, scenarios/health.py)."""

    kind: str  # "worker_missing", "worker_back" or "overshoot"
    ts: float  # epoch seconds: when it began
    worker: str
    workers: int
    users: int
    shape_users: int  # overshoot: what the shape asked for
    max_users: int
    until: float
    duration_s: float


class WorkerHealth(TypedDict, total=False):
    """generator_health.json: Locust's heartbeat tolerance and what went wrong."""

    role: str
    heartbeat_liveness: int  # missed 1-s heartbeats before a worker is marked missing
    heartbeat_interval_s: float
    overshoot_s: float
    max_users: int
    events: list[HealthEvent]


class StallRow(TypedDict):
    """One stall of a generator process, merged from its loop and heartbeat records."""

    worker: str  # samples.csv's worker: a Locust worker's client id, `local` or `master`
    start: float  # epoch seconds
    length_s: float
    source: str  # "loop", "heartbeat" or "both"


class StallFigures(TypedDict):
    """The generator's stalls over the measured time (reports/stalls.py)."""

    stall_s: float | None  # the detection bound the generator used (None: not watched)
    max_stall_s: float  # one stall longer than this: invalid
    max_share: float  # a process stalled longer than this share of the measured time: invalid
    measured_s: float
    stalls: list[StallRow]  # those overlapping the measured time, whole
    shares: dict[str, float]  # process -> share of the measured time in stalls
    excluded: int  # requests after warm-up in flight across a stall, not judged
    loops: dict[str, Any]  # process -> its loop's lateness (LoopWatch.report)


class OpenModelFigures(TypedDict, total=False):
    """open_model.json's run figures: the schedule kept, or how far it slipped."""

    mode: str
    intended_rps: float | None
    achieved_rps: float | None
    scheduled: int
    started: int
    completed: int
    late: int  # started more than late_s after their slot
    late_share: float
    late_s: float
    max_late_share: float  # more late than this: invalid
    max_in_flight: int  # the cap of the pool of requests in flight
    peak_in_flight: int
    max_start_lag_s: float
    started_at: float
    starts_by_10s: list[list[int]]  # [second, intended starts, actual starts]


class GeneratorHealth(TypedDict):
    """The load generator's CPU and rates after warm-up (it must not set the pace)."""

    cpu_max: float | None
    cpu_p95: float | None
    saturated: bool
    saturated_at: float | None  # start of the busiest window when it was over the limit
    cpu_window_max: float | None  # the busiest process's mean over its busiest window
    cpu_window_s: int
    intended_rps: float | None
    achieved_rps: float | None
    health: NotRequired[WorkerHealth | None]
    stalls: NotRequired[StallFigures]
    open_model: NotRequired[OpenModelFigures | None]


class PhaseRow(TypedDict):
    """One ramp or hold of the users the generator ran (reports/phases.py)."""

    name: str  # "ramp 1,000 to 10,000", "hold 10,000"
    kind: str  # "ramp" or "hold"
    start_s: float  # seconds from the end of warm-up (negative: in warm-up)
    end_s: float
    judged: bool  # after warm-up: its samples are the budgets'
    users_from: int
    users_to: int
    requests: int  # setup sign-ins not counted
    rps: float
    unexpected: int
    refused: int  # 503 and 429 answers, expected or not
    no_response: int
    sign_ins_refused: int  # setup sign-ins answered 503 (not judged, never in `requests`)
    max_ms: float | None  # the longest wait of the phase
    latency: dict[str, float | None]  # latency budget id -> the phase's percentile, ms
    # after a ramp down: seconds from its start until every latency budget held to the end
    # of this hold; None when they did not, or for a phase after no burst
    recovery_s: float | None


class Summary(TypedDict):
    """summary.json: the run's verdict, every budget's, and the figures behind them."""

    run_id: str
    complete: bool
    interrupted: str | None
    verdict: Verdict
    exit_code: int
    invalid_reasons: list[str]
    warnings: list[str]
    prd: str
    shape: str | None
    service_profile: str | None
    target: str | None
    api: ApiNamed | None
    config_hash: str | None
    started_at: str | None
    measured_from: float
    duration_s: float | None
    requests: int
    rps: float | None
    budgets: list[BudgetResult]
    endpoints: list[EndpointRow]
    generator: GeneratorHealth
    config: RunConfig
    meta: RunMeta
    phases: NotRequired[list[PhaseRow]]


class MicrobenchResult(TypedDict):
    """A microbenchmark budget judged on one benchmark of pytest-benchmark's JSON."""

    id: str
    benchmark: str
    requirement: str
    bound: str  # the bound's text: "< 5 ms"
    measured: float | None
    ci_low: float | None
    ci_high: float | None
    samples: int
    verdict: BudgetVerdict
    sentence: str


# ---------------------------------------------------------------- reading and writing


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file, or {} when it is absent."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunDirError(f"{path} is not readable JSON ({exc}); re-run or remove it") from exc
    return data if isinstance(data, dict) else {}


def read_config(run_dir: Path) -> RunConfig:
    """config.json of a run folder ({} when absent)."""
    return cast(RunConfig, read_json(Path(run_dir) / "config.json"))


def read_meta(run_dir: Path) -> RunMeta:
    """meta.json of a run folder ({} when absent)."""
    return cast(RunMeta, read_json(Path(run_dir) / "meta.json"))


def read_summary(run_dir: Path) -> Summary | None:
    """summary.json of a run folder; None when absent or written by an older gate (lacking a
    key of ``Summary``): such a run is judged again, see the module docstring."""
    data = read_json(Path(run_dir) / "summary.json")
    if not Summary.__required_keys__ <= data.keys():
        return None
    return cast(Summary, data)

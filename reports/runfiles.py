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
   summary.json, ``velro_perf/runplan.py`` and ``runexec.py`` for config.json and meta.json,
   scenarios/hooks.py for the locustfile's files;
3. describe it in its file's table in docs/run-format.md (tests/test_run_format.py checks).

The files are read and written through ``reports.runfolder.RunFolder`` (one reader, one
atomic writer); tests/test_run_format.py holds docs/run-format.md to these types.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import NotRequired, TypedDict

__all__ = [
    "EXIT_FAIL",
    "EXIT_INVALID",
    "EXIT_PASS",
    "ApiDescribed",
    "ApiNamed",
    "BudgetResult",
    "BudgetVerdict",
    "EndpointRow",
    "GeneratorActions",
    "GeneratorHealth",
    "GeneratorMeta",
    "GeneratorSample",
    "GitState",
    "HealthEvent",
    "LocustFigures",
    "LoopReport",
    "Machine",
    "MetricsScrape",
    "MicrobenchResult",
    "OpenModelFigures",
    "OpenModelFile",
    "PhaseRow",
    "RunConfig",
    "RunMeta",
    "ScraperMeta",
    "SeedSize",
    "StallFigures",
    "StallRecord",
    "StallRow",
    "Summary",
    "Verdict",
    "Versions",
    "WaitTime",
    "WorkerHealth",
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
    processes: int | None  # Locust processes (-1: one per core)
    open_model_rate: float | None
    samples_mode: str  # exact | histogram (velro-perf run --samples)
    api_file: str  # the API file the scenarios drove (targets/contract.toml by default)
    api: ApiDescribed
    users_file: str | None  # the CSV of existing users the scenarios signed in as
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
    capacity: dict[str, object]  # velro-perf capacity: the search's settings


class GitState(TypedDict):
    """meta.json `git`: the suite's checkout (nulls outside a git checkout)."""

    commit: str | None
    dirty: bool | None


class Versions(TypedDict):
    """meta.json `versions`."""

    python: str
    locust: str | None
    velro: str | None
    platform: str


class Machine(TypedDict):
    """meta.json `machine`: where the run ran."""

    cpus: int | None
    cpu_model: str
    memory_gb: float
    hostname: str


class WaitTime(TypedDict):
    """Locust's `between(min_s, max_s)` think time of the shape."""

    kind: str
    min_s: float
    max_s: float


class GeneratorMeta(TypedDict, total=False):
    """meta.json `generator`: what the runner and the locustfile did to the load generator."""

    gc: str | None  # the locustfile's GC policy (generator_actions.json), in words
    keep_alive_s: float | None  # the reference service's keep-alive, longer than any think time
    processes: int | None  # Locust processes (-1: one per core)
    wait_time: WaitTime | None
    service_nice: int  # the reference service's niceness: the generator comes first
    gc_by_process: dict[str, dict[str, object]]  # process -> what it did to its GC (GcGuard)


class ScraperMeta(TypedDict):
    """meta.json `metrics_scraper`: how the scrapes of the target's metrics went."""

    url: str
    scrapes: int
    errors: int
    unsupported: bool  # the target answered 404: no metrics.jsonl


class RunMeta(TypedDict, total=False):
    """meta.json: when and where it was run, and how it ended."""

    run_id: str
    started_at: str  # ISO 8601 UTC
    ended_at: str | None
    measured_from: float | None  # epoch seconds: the end of warm-up
    complete: bool  # false until the run ended normally
    interrupted: str | None  # SIGINT, SIGTERM, "crash: ...", "error: ..."
    git: GitState
    versions: Versions
    machine: Machine
    generator: GeneratorMeta
    metrics_scraper: ScraperMeta
    locust_exit_code: int | None


class GeneratorSample(TypedDict):
    """One line of generator.jsonl (velro_perf/watcher.py): the generator, every second."""

    ts: float  # epoch seconds
    cpu_percent_max: float  # the busiest generator process, % of one core
    cpu_percent_total: float
    rss_mb: float
    processes: int
    users: int | None  # Locust's, from its stats history
    intended_rps: float | None
    achieved_rps: float | None


class MetricsScrape(TypedDict):
    """One line of metrics.jsonl (velro_perf/scraper.py): a scrape of the target's metrics."""

    ts: float  # epoch seconds
    metrics: object  # the body of GET /api/v1/performance/metrics


class GeneratorActions(TypedDict):
    """generator_actions.json (the locustfile): what each process did to its GC."""

    gc: str
    processes: dict[str, dict[str, object]]


class OpenModelFile(TypedDict, total=False):
    """open_model.json (scenarios/openmodel.py `combine_reports`): the schedule, all processes."""

    mode: str  # "open" or "closed"
    intended_rps: float | None
    achieved_rps: float | None
    scheduled: int
    started: int
    completed: int
    late: int
    late_share: float
    late_s: float | None
    max_late_share: float
    max_in_flight: int
    peak_in_flight: int
    max_start_lag_s: float
    started_at: float
    covered_until: float  # epoch s: every process's figures were taken at or after it
    timeline: list[list[int]]  # [second, intended starts, actual starts]
    processes: dict[str, dict[str, object]]  # each process's own report
    note: str


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


class StallRecord(TypedDict):
    """One stall as a process saw it: its loop's timer late, or a worker's heartbeat late."""

    worker: str  # a Locust worker's client id, `local` or `master`
    start: float  # epoch seconds: when the timer (or the heartbeat) was due
    length_s: float


class LoopReport(TypedDict):
    """How late one process's loop timer fired (scenarios/stalls.py `LoopWatch.report`)."""

    interval_s: float
    stall_s: float
    ticks: int
    max_lag_s: float
    lag_counts: dict[str, int]  # lower bound of lateness in seconds -> firings


class WorkerHealth(TypedDict, total=False):
    """generator_health.json: Locust's heartbeat tolerance, what went wrong, and the stalls."""

    role: str
    heartbeat_liveness: int  # missed 1-s heartbeats before a worker is marked missing
    heartbeat_interval_s: float
    overshoot_s: float
    max_users: int
    events: list[HealthEvent]
    stall_s: float  # a timer or heartbeat this much late is a stall
    stall_interval_s: float  # the loop timer's interval
    stalls: list[StallRecord]
    heartbeat_gaps: list[StallRecord]
    loops: dict[str, LoopReport]  # process -> its loop's lateness


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
    loops: dict[str, LoopReport]  # process -> its loop's lateness (LoopWatch.report)


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
    # what measured the run: "exact" (a row per request: samples/ or samples.csv) or
    # "histogram" (HdrHistograms of 3 significant digits: histograms/)
    samples_mode: NotRequired[str]
    samples_source: NotRequired[str]
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

"""Synthetic run directories in the format of docs/run-format.md, for tests and demos.

Latencies are drawn from log-normal distributions (seeded, so every call gives the same run);
nothing here pretends to be a measurement: the run's config says `target = "synthetic"`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from velro_perf.reports.histograms import encode_many
from velro_perf.reports.runfiles import RunConfig, RunMeta
from velro_perf.reports.runfolder import RunFolder
from velro_perf.reports.samplefiles import (
    HIST_SCHEMA,
    HISTOGRAMS_DIR,
    LEGACY_CSV,
    SCHEMA,
    samples_dir,
)
from velro_perf.reports.stats import percentiles

__all__ = ["DEFAULT_ENDPOINTS", "EndpointSpec", "write_synthetic_run"]

CHUNK = 1_000_000  # requests drawn and written at a time
THIN = 10  # Locust's figures (locust_stats.csv) from every THIN-th latency of an endpoint


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint's traffic: its share of requests and a log-normal latency (median, sigma)."""

    category: str
    weight: float
    median_ms: float
    sigma: float = 0.5
    unexpected: float = 0.0  # probability of an unexpected response


DEFAULT_ENDPOINTS: Mapping[str, EndpointSpec] = {
    "GET /api/v1/auth/me": EndpointSpec("authentication", 0.35, 4.0),
    "GET /api/v1/internal/users/{id}": EndpointSpec("service_key", 0.10, 3.0),
    "GET /api/v1/authz/check": EndpointSpec("authorization", 0.30, 5.0),
    "GET /api/v1/projects/{id}": EndpointSpec("authorization", 0.15, 6.0),
    "POST /api/v1/auth/login": EndpointSpec("login", 0.06, 40.0, 0.3),
    "POST /api/v1/auth/register": EndpointSpec("registration", 0.04, 60.0, 0.3),
}


@dataclass
class SyntheticRun:
    """What to write; every field has a sensible default."""

    n: int = 5000
    duration_s: float = 120.0
    warmup_s: float = 10.0
    start: float = 1_764_000_000.0
    shape: str = "steady"
    profile: str = "fixed"
    endpoints: Mapping[str, EndpointSpec] = field(default_factory=lambda: dict(DEFAULT_ENDPOINTS))
    latency_scale: float = 1.0
    cpu_percent: float = 40.0
    users: int = 100
    hit_rate: float | None = 0.97
    complete: bool = True
    interrupted: str | None = None
    config_hash: str = "synthetic-config"
    seed: int = 1
    setup_requests: int = 20


def write_synthetic_run(run_dir: Path, **kwargs: object) -> Path:
    """Write a complete run directory; keyword arguments override SyntheticRun's fields.

    The samples go to samples/ in chunks of CHUNK requests (memory stays flat at any n);
    ``samples_format="csv"`` writes the samples.csv of runs recorded before instead, and
    ``"histogram"`` the histograms/ of histogram mode (reports.histograms)."""
    samples_format = str(kwargs.pop("samples_format", "parquet"))
    if samples_format not in ("parquet", "csv", "histogram"):
        raise ValueError(f"samples_format {samples_format!r}; give 'parquet', 'csv' or 'histogram'")
    spec = SyntheticRun(**kwargs)  # type: ignore[arg-type]
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    seconds = np.arange(int(spec.duration_s) + 1, dtype=np.float64)
    per_second = np.zeros(len(seconds), dtype=np.int64)
    by_endpoint: dict[str, list[np.ndarray]] = {}
    failures: dict[str, int] = {}
    counts: dict[str, int] = {}
    csv_writer: pacsv.CSVWriter | None = None
    for i, chunk in enumerate(_sample_chunks(spec, rng)):
        if samples_format == "csv":
            if csv_writer is None:
                csv_writer = pacsv.CSVWriter(run_dir / LEGACY_CSV, chunk.schema)
            csv_writer.write_table(chunk)
        elif samples_format == "histogram":
            folder = run_dir / HISTOGRAMS_DIR
            folder.mkdir(exist_ok=True)
            pq.write_table(_histograms(chunk), folder / f"seg-{i + 1:08d}-{i + 1:08d}.parquet")
        else:
            folder = samples_dir(run_dir)
            folder.mkdir(exist_ok=True)
            pq.write_table(chunk, folder / f"seg-{i + 1:08d}-{i + 1:08d}.parquet")
        _tally(chunk, spec, per_second, by_endpoint, failures, counts)
    if csv_writer is not None:
        csv_writer.close()
    _write_config_and_meta(run_dir, spec)
    users = np.round(spec.users * np.minimum(1.0, (seconds + 1) / max(spec.warmup_s, 1.0)))
    series = _PerSecond(seconds, users, per_second)
    _write_history(run_dir, spec, series)
    _write_locust_stats(run_dir, by_endpoint, failures, counts)
    _write_generator(run_dir, spec, series)
    if spec.hit_rate is not None:
        _write_metrics(run_dir, spec, seconds, rng)
    return run_dir


def _histograms(chunk: pa.Table) -> pa.Table:
    """A chunk's requests as histogram mode records them: per second, endpoint, category,
    status and expected, one HdrHistogram (HIST_SCHEMA)."""
    frame = chunk.to_pandas()
    frame["second"] = np.floor(frame["ts"].to_numpy()).astype(np.int64)
    keys = ["second", "endpoint", "category", "status", "expected"]
    columns: dict[str, list[object]] = {name: [] for name in HIST_SCHEMA.names}
    for key, group in frame.groupby(keys, observed=True, sort=True):
        second, endpoint, category, status, expected = key
        latency = group["latency_ms"].to_numpy(dtype=np.float64)
        carried = group["st_app"].notna().to_numpy()
        for name, value in zip(
            HIST_SCHEMA.names,
            (
                int(second), str(endpoint), str(category), int(status), int(expected), "local",
                len(latency), encode_many(latency), float(latency.max()), int(carried.sum()),
                float(group["st_app"].sum()), float(group["st_db"].fillna(0)[carried].sum()),
                float(group["st_hash"].fillna(0)[carried].sum()),
            ),
            strict=True,
        ):  # fmt: skip
            columns[name].append(value)
    return pa.table(columns, schema=HIST_SCHEMA)


def _tally(
    chunk: pa.Table,
    spec: SyntheticRun,
    per_second: np.ndarray,
    by_endpoint: dict[str, list[np.ndarray]],
    failures: dict[str, int],
    counts: dict[str, int],
) -> None:
    """Requests a second (setup excluded), and a thinned sample of each endpoint's latencies
    for Locust's own, rounded figures (they need not be exact: Locust's are not)."""
    frame = chunk.select(["ts", "endpoint", "category", "latency_ms", "expected"]).to_pandas()
    judged = frame[frame["category"] != "setup"]
    second = (judged["ts"].to_numpy() - spec.start).astype(np.int64).clip(0, len(per_second) - 1)
    per_second += np.bincount(second, minlength=len(per_second))[: len(per_second)]
    for endpoint, group in frame.groupby("endpoint", observed=True):
        name = str(endpoint)
        by_endpoint.setdefault(name, []).append(group["latency_ms"].to_numpy()[::THIN])
        failures[name] = failures.get(name, 0) + int((group["expected"] == 0).sum())
        counts[name] = counts.get(name, 0) + len(group)


def _sample_chunks(spec: SyntheticRun, rng: np.random.Generator) -> Iterator[pa.Table]:
    """The samples in time order: `setup_requests` setup rows, then `n` drawn requests, in
    tables of at most CHUNK rows (each chunk a slice of the run's time)."""
    chunks = max(1, -(-spec.n // CHUNK))
    for i in range(chunks):
        size = spec.n // chunks + (1 if i < spec.n % chunks else 0)
        span = spec.duration_s / chunks
        table = _drawn(spec, rng, size, spec.start + i * span, span)
        if i == 0 and spec.setup_requests:
            setup = table.slice(0, min(spec.setup_requests, table.num_rows))
            setup = setup.set_column(
                setup.schema.get_field_index("category"),
                "category",
                pa.array(["setup"] * setup.num_rows, pa.string()),
            ).set_column(
                setup.schema.get_field_index("endpoint"),
                "endpoint",
                pa.array(["POST /api/v1/auth/register"] * setup.num_rows, pa.string()),
            )
            table = pa.concat_tables([setup, table])
        yield table


def _drawn(
    spec: SyntheticRun, rng: np.random.Generator, n: int, start: float, span: float
) -> pa.Table:
    names = list(spec.endpoints)
    weights = np.array([spec.endpoints[e].weight for e in names], dtype=np.float64)
    which = rng.choice(len(names), size=n, p=weights / weights.sum())
    medians = np.array([spec.endpoints[e].median_ms for e in names])[which]
    sigmas = np.array([spec.endpoints[e].sigma for e in names])[which]
    # four decimals, as a CSV of them would hold: the two formats hold the same numbers
    latency = np.round(medians * spec.latency_scale * np.exp(sigmas * rng.standard_normal(n)), 4)
    ts = np.round(np.sort(start + rng.uniform(0, span, n)), 4)
    unexpected_p = np.array([spec.endpoints[e].unexpected for e in names])[which]
    expected = (rng.uniform(size=n) >= unexpected_p).astype(np.int8)
    status = np.where(expected == 1, 200, 500).astype(np.int32)
    category_of = np.array([spec.endpoints[e].category for e in names], dtype=object)
    is_login = np.isin(category_of, ["login"])[which]
    hashes = np.isin(category_of, ["login", "registration"])[which]
    tiers = rng.choice(4, size=n, p=[0.8, 0.1, 0.05, 0.05])
    return pa.table(
        {
            "ts": ts,
            "endpoint": pa.DictionaryArray.from_arrays(
                pa.array(which.astype(np.int32)), pa.array(names)
            ).cast(pa.string()),
            "category": pa.DictionaryArray.from_arrays(
                pa.array(which.astype(np.int32)), pa.array(list(category_of), pa.string())
            ).cast(pa.string()),
            "latency_ms": latency,
            "status": status,
            "expected": expected,
            "worker": pa.repeat(pa.scalar("local", pa.string()), n),
            "st_app": np.round(latency * 0.8, 4),
            "st_db": pa.array(np.round(latency * 0.3, 4), mask=is_login),
            "st_hash": pa.array(np.round(latency * 0.5, 4), mask=~hashes),
            "st_cache": pa.DictionaryArray.from_arrays(
                pa.array(tiers.astype(np.int32)), pa.array(["L1", "L2", "L3", "miss"])
            ).cast(pa.string()),
        },
        schema=SCHEMA,
    )


def _write_config_and_meta(run_dir: Path, spec: SyntheticRun) -> None:
    config: RunConfig = {
        "shape": spec.shape,
        "target": "synthetic",
        "service_profile": spec.profile,
        "processes": 1,
        "open_model_rate": None,
        "budgets_file": "fixtures/budgets.toml",
        "seed": {"users": 100, "teams": 10, "projects": 100},
        "database": "sqlite",
        "redis": None,
        "config_hash": spec.config_hash,
    }
    meta: RunMeta = {
        "run_id": run_dir.name,
        "started_at": pd.Timestamp(spec.start, unit="s", tz="UTC").isoformat(),
        "ended_at": pd.Timestamp(spec.start + spec.duration_s, unit="s", tz="UTC").isoformat(),
        "measured_from": spec.start + spec.warmup_s,
        "complete": spec.complete,
        "interrupted": spec.interrupted,
        "git": {"commit": "0000000", "dirty": False},
        "versions": {"python": "3.11", "locust": "2.x", "velro": "0.1.0", "platform": "linux"},
        "machine": {"cpus": 2, "cpu_model": "synthetic", "memory_gb": 8, "hostname": "test"},
        "generator": {
            "gc": "frozen",
            "keep_alive_s": 60,
            "processes": 1,
            "wait_time": {"kind": "constant", "min_s": 1.0, "max_s": 1.0},
        },
    }
    folder = RunFolder(run_dir)
    folder.write_config(config)
    folder.write_meta(meta)


@dataclass(frozen=True)
class _PerSecond:
    """The run second by second: its seconds, the users running, the requests sent."""

    seconds: np.ndarray
    users: np.ndarray
    requests: np.ndarray


def _write_history(run_dir: Path, spec: SyntheticRun, series: _PerSecond) -> None:
    seconds, users, per_second = series.seconds, series.users, series.requests
    history = pd.DataFrame(
        {
            "Timestamp": (spec.start + seconds).astype(np.int64),
            "User Count": users,
            "Type": "",
            "Name": "Aggregated",
            "Requests/s": per_second[: len(seconds)],
            "Failures/s": 0.0,
        }
    )
    history.to_csv(run_dir / "locust_stats_history.csv", index=False)


def _write_generator(run_dir: Path, spec: SyntheticRun, series: _PerSecond) -> None:
    seconds, users, per_second = series.seconds, series.users, series.requests
    gen = [
        {
            "ts": spec.start + s,
            "cpu_percent_max": spec.cpu_percent + 2 * np.sin(s),
            "cpu_percent_total": spec.cpu_percent * 1.2,
            "rss_mb": 120.0,
            "processes": 1,
            "users": float(u),
            "intended_rps": None,
            "achieved_rps": float(r),
        }
        for s, u, r in zip(seconds, users, per_second, strict=False)
    ]
    _write_jsonl(run_dir / "generator.jsonl", gen)


def _write_locust_stats(
    run_dir: Path,
    by_endpoint: dict[str, list[np.ndarray]],
    failures: dict[str, int],
    counts: dict[str, int],
) -> None:
    rows = []
    for endpoint, parts in sorted(by_endpoint.items()):
        method, name = endpoint.split(" ", 1)
        lat = np.sort(np.concatenate(parts))
        # the budgets' rule, then rounded to two significant figures as Locust rounds its own
        # percentiles (locust/stats.py, "rounded")
        qs = (50.0, 90.0, 95.0, 99.0, 99.9)
        rnd = {q: float(f"{value:.2g}") for q, value in zip(qs, percentiles(lat, qs), strict=True)}
        rows.append(
            {
                "Type": method,
                "Name": name,
                "Request Count": counts[endpoint],
                "Failure Count": failures.get(endpoint, 0),
                "50%": rnd[50],
                "90%": rnd[90],
                "95%": rnd[95],
                "99%": rnd[99],
                "99.9%": rnd[99.9],
                "100%": round(float(lat.max())),
            }
        )
    pd.DataFrame(rows).to_csv(run_dir / "locust_stats.csv", index=False)


def _write_metrics(
    run_dir: Path, spec: SyntheticRun, seconds: np.ndarray, rng: np.random.Generator
) -> None:
    hr = spec.hit_rate or 0.0
    l1h = l1m = l2h = l2m = l3h = l3m = 0
    lines = []
    for s in seconds[::5]:
        lookups = int(rng.integers(400, 600))
        hits = int(rng.binomial(lookups, hr))
        a = int(hits * 0.8)
        b = int(hits * 0.15)
        c = hits - a - b
        l1h += a
        l1m += lookups - a
        l2h += b
        l2m += lookups - a - b
        l3h += c
        l3m += lookups - hits
        lines.append(
            {
                "ts": spec.start + float(s),
                "metrics": {
                    "routes": {},
                    "cache": {
                        "L1": {"hits": l1h, "misses": l1m},
                        "L2": {"hits": l2h, "misses": l2m},
                        "L3": {"hits": l3h, "misses": l3m},
                    },
                    "executor": {"workers": 4, "busy": 1, "queued": 0, "timeouts": 0},
                },
            }
        )
    _write_jsonl(run_dir / "metrics.jsonl", lines)


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")

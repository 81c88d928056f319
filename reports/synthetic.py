"""Synthetic run directories in the format of docs/run-format.md, for tests and demos.

Latencies are drawn from log-normal distributions (seeded, so every call gives the same run);
nothing here pretends to be a measurement: the run's config says `target = "synthetic"`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reports.runfiles import RunConfig, RunMeta

__all__ = ["DEFAULT_ENDPOINTS", "EndpointSpec", "write_synthetic_run"]


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
    """Write a complete run directory; keyword arguments override SyntheticRun's fields."""
    spec = SyntheticRun(**kwargs)  # type: ignore[arg-type]
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    samples = _samples(spec, rng)
    samples.to_csv(run_dir / "samples.csv", index=False, float_format="%.4f")
    _write_config_and_meta(run_dir, spec)
    seconds = np.arange(int(spec.duration_s) + 1, dtype=np.float64)
    judged_ts = samples["ts"].to_numpy()[spec.setup_requests :]
    per_second = np.bincount((judged_ts - spec.start).astype(np.int64), minlength=len(seconds))
    users = np.round(spec.users * np.minimum(1.0, (seconds + 1) / max(spec.warmup_s, 1.0)))
    series = _PerSecond(seconds, users, per_second)
    _write_history(run_dir, spec, series)
    _write_locust_stats(run_dir, samples)
    _write_generator(run_dir, spec, series)
    if spec.hit_rate is not None:
        _write_metrics(run_dir, spec, seconds, rng)
    return run_dir


def _samples(spec: SyntheticRun, rng: np.random.Generator) -> pd.DataFrame:
    """samples.csv's rows: `setup_requests` setup rows, then `n` drawn requests in time order."""
    names = list(spec.endpoints)
    weights = np.array([spec.endpoints[e].weight for e in names], dtype=np.float64)
    which = rng.choice(len(names), size=spec.n, p=weights / weights.sum())
    medians = np.array([spec.endpoints[e].median_ms for e in names])[which]
    sigmas = np.array([spec.endpoints[e].sigma for e in names])[which]
    latency = medians * spec.latency_scale * np.exp(sigmas * rng.standard_normal(spec.n))
    ts = np.sort(spec.start + rng.uniform(0, spec.duration_s, spec.n))
    unexpected_p = np.array([spec.endpoints[e].unexpected for e in names])[which]
    expected = (rng.uniform(size=spec.n) >= unexpected_p).astype(np.int8)
    status = np.where(expected == 1, 200, 500).astype(np.int32)
    categories = np.array([spec.endpoints[e].category for e in names], dtype=object)[which]
    cache = rng.choice(
        np.array(["L1", "L2", "L3", "miss"], dtype=object), size=spec.n, p=[0.8, 0.1, 0.05, 0.05]
    )
    samples = pd.DataFrame(
        {
            "ts": ts,
            "endpoint": np.array(names, dtype=object)[which],
            "category": categories,
            "latency_ms": latency,
            "status": status,
            "expected": expected,
            "worker": "local",
            "st_app": latency * 0.8,
            "st_db": np.where(categories == "login", np.nan, latency * 0.3),
            "st_hash": np.where(
                np.isin(categories, ["login", "registration"]), latency * 0.5, np.nan
            ),
            "st_cache": cache,
        }
    )
    if not spec.setup_requests:
        return samples
    setup = samples.iloc[: spec.setup_requests].copy()
    setup["category"] = "setup"
    setup["endpoint"] = "POST /api/v1/auth/register"
    return pd.concat([setup, samples], ignore_index=True)


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
            "wait_time": "constant(1)",
        },
    }
    (run_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (run_dir / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


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


def _write_locust_stats(run_dir: Path, samples: pd.DataFrame) -> None:
    rows = []
    for endpoint, g in samples.groupby("endpoint"):
        method, name = str(endpoint).split(" ", 1)
        lat = g["latency_ms"].to_numpy()
        # Locust rounds its percentiles to two significant figures (stats.py, "rounded")
        rnd = {q: float(f"{np.percentile(lat, q):.2g}") for q in (50, 90, 95, 99, 99.9)}
        rows.append(
            {
                "Type": method,
                "Name": name,
                "Request Count": len(g),
                "Failure Count": int((g["expected"] == 0).sum()),
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

"""Requests per second of the reference service beside a bare FastAPI app doing the same JWT check.

    python -m benchmarks.throughput [--duration 10] [--warmup 3] [--repeats 2]
                                    [--connections 16] [--out runs/bench/throughput.json]
    velro-perf bench --throughput -- [the same options]

One run on this machine starts, one after the other, one uvicorn process each of

- ``bare``: ``benchmarks.bare_app`` (FastAPI, PyJWT verify with the same secret and claims),
- ``velro``: the reference service, fixed profile, SQLite, Redis when 127.0.0.1:6379
  answers, with a seeded user and project,

and drives each with the same closed-loop load from a separate process
(``benchmarks.loadgen``), loopback only, bounded in time. Measured: ``GET /bare/me`` on bare;
``GET /api/v1/auth/me`` and ``GET /api/v1/authz/check`` on velro, each after a warm-up that
fills the caches. The order alternates (bare, velro, bare, velro, ...) and the figures are
the median of the repeats, so that a neighbour's burst on this shared machine lands on both
sides rather than one. Also reported: the ratios me/bare (target >= 0.60) and check/bare
(target >= 0.50), and the cache hit rate over the measured windows, from
``/api/v1/performance/metrics`` (the definition of ``reports.counters.cache_counters``).

Beside requests per second, each phase records the server's CPU time per request (psutil, over
the measured window) and the generator's (its rusage): on a machine shared with other work,
rps moves with the neighbours' load, CPU time per request much less, so ``cpu_ratios`` (bare's
CPU per request over velro's: the capacity ratio on one core) is the steadier figure; and a
generator whose CPU per request nears the server's would be setting the pace itself. The load
average at start and end is written too.

Performance is measured here, not asserted: the script writes the figures and exits 0 when
every phase ran, whatever the ratios; 1 when a phase failed (a server did not start, a
response was not 200).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from velro_perf.procs import terminate
from velro_perf.target import delete_redis_prefix, free_port, wait_healthy

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"me": 0.60, "check": 0.50}
REDIS_URL = os.environ.get("VELRO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_up() -> bool:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=1)
        client.ping()
        client.close()
    except (redis.RedisError, OSError):
        return False
    return True


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far."""
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)


@contextmanager
def _server(argv: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[Server]:
    """A uvicorn process on 127.0.0.1:port, healthy, stopped on exit."""
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as sink:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            argv, env=env, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            wait_healthy(url, proc, 60.0, log, interval_s=0.1)
            yield Server(url, proc.pid)
        finally:
            terminate(proc, grace_s=15)


@contextmanager
def servers_session(name: str, log: Path, *, redis: bool, prefix: str) -> Iterator[None]:
    """A benchmark's servers at work: their log named when it fails, its Redis keys gone."""
    try:
        yield
    except BaseException:
        print(f"{name}: the servers' log is {log}", file=sys.stderr)
        raise
    finally:
        if redis:
            delete_redis_prefix(REDIS_URL, prefix)


def velro_env(work: Path, *, redis: bool, prefix: str, secret: str) -> dict[str, str]:
    """The environment of a benchmarked reference service (fixed, SQLite in `work`), its
    schema made as an operator makes it."""
    env = {
        **os.environ,
        "VELRO_PROFILE": "fixed",
        "VELRO_DATABASE_URL": f"sqlite:///{work / 'velro.db'}",
        "VELRO_REDIS_URL": REDIS_URL if redis else "",
        "VELRO_REDIS_PREFIX": prefix,
        "VELRO_JWT_SECRET": secret,
        "VELRO_TOKEN_TTL_S": "7200",
        "VELRO_LOG_LEVEL": "warning",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
    }
    env.pop("CI", None)
    subprocess.run(
        [sys.executable, "-m", "velro", "db", "init"], env=env, cwd=ROOT, check=True,
        capture_output=True, timeout=60,
    )  # fmt: skip
    return env


def _velro(env: dict[str, str], port: int, log: Path, extra: list[str] | None = None) -> Any:
    argv = [sys.executable, "-m", "velro", "serve", "--host", "127.0.0.1", "--port", str(port)]
    return _server([*argv, *(extra or [])], env, port, log)


def _bare(env: dict[str, str], port: int, log: Path) -> Any:
    argv = [
        sys.executable, "-m", "uvicorn", "benchmarks.bare_app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        "--no-access-log", "--no-server-header",
    ]  # fmt: skip
    return _server(argv, env, port, log)


def _load(
    url: str, token: str, warmup_s: float, duration_s: float, connections: int
) -> dict[str, Any]:
    """One load phase from a separate process; its JSON line."""
    cmd = [
        sys.executable, "-m", "benchmarks.loadgen", url,
        "--header", f"Authorization: Bearer {token}",
        "--connections", str(connections),
        "--warmup", str(warmup_s), "--duration", str(duration_s),
    ]  # fmt: skip
    proc = subprocess.run(  # noqa: S603 - our own interpreter and module
        cmd, cwd=ROOT, capture_output=True, text=True, check=False,
        timeout=warmup_s + duration_s + 60,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _seed(base: str) -> tuple[str, str]:
    """Register a user, log in, create a project: (access token, project id)."""
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    password = secrets.token_urlsafe(16)
    with httpx.Client(base_url=f"{base}/api/v1", timeout=30) as client:
        r = client.post("/auth/register", json={"email": email, "password": password})
        r.raise_for_status()
        r = client.post("/auth/login", json={"email": email, "password": password})
        r.raise_for_status()
        token = str(r.json()["access_token"])
        r = client.post(
            "/projects", json={"name": "bench"}, headers={"Authorization": f"Bearer {token}"}
        )
        r.raise_for_status()
        return token, str(r.json()["id"])


def _check_ok(url: str, token: str) -> None:
    """Correctness outside the timed phase: the endpoint answers 200 to this token."""
    r = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    if r.status_code != 200:
        raise RuntimeError(f"GET {url} answered {r.status_code}: {r.text[:300]}")


def _metrics(base: str) -> dict[str, Any] | None:
    try:
        r = httpx.get(f"{base}/api/v1/performance/metrics", timeout=10)
    except httpx.HTTPError:
        return None
    body = r.json() if r.status_code == 200 else None
    return body if isinstance(body, dict) else None


def _hit_rate(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    if before is None or after is None:
        return {"hits": None, "lookups": None, "hit_rate": None}
    try:
        from velro_perf.reports.counters import cache_counters
    except ModuleNotFoundError:
        return {"hits": None, "lookups": None, "hit_rate": None}
    hits, lookups = cache_counters(
        [{"ts": 1.0, "metrics": before}, {"ts": 2.0, "metrics": after}], measured_from=0.0
    )
    rate = hits / lookups if hits is not None and lookups else None
    return {"hits": hits, "lookups": lookups, "hit_rate": rate}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None when either is missing or zero."""
    return numerator / denominator if numerator and denominator else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every phase, in alternating order; the document written to ``--out``."""
    work = Path(tempfile.mkdtemp(prefix="velro-throughput-"))
    log = work / "servers.log"
    secret = secrets.token_urlsafe(48)
    redis = _redis_up() and not args.no_redis
    prefix = f"velro_tp_{uuid.uuid4().hex[:10]}:"
    env = velro_env(work, redis=redis, prefix=prefix, secret=secret)

    loadavg_start = os.getloadavg()
    started = datetime.now(UTC).isoformat()
    with servers_session("throughput", log, redis=redis, prefix=prefix):
        phases = _phases(args, env, log)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "started_at": started,
        "ended_at": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": sys.platform,
            "loadavg_start": [round(x, 2) for x in loadavg_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        },
        "config": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeats": args.repeats,
            "connections": args.connections,
            "velro": {"profile": "fixed", "database": "sqlite", "redis": redis},
            "generator": "benchmarks.loadgen (closed loop, keep-alive, one process)",
            "order": "bare, velro per repeat",
        },
        **_figures(phases),
        "phases": phases,
    }


def _phases(args: argparse.Namespace, env: dict[str, str], log: Path) -> list[dict[str, Any]]:
    """The seed, then per repeat: bare, then velro's endpoints; one entry per phase."""
    phases: list[dict[str, Any]] = []
    # the seed: one user and one project, made through the contract like any client would
    with _velro(env, free_port(), log) as server:
        token, project = _seed(server.url)
    paths = {
        "me": "/api/v1/auth/me",
        "check": f"/api/v1/authz/check?resource_id={project}&action=read",
    }
    for repeat in range(args.repeats):
        with _bare(env, free_port(), log) as server:
            res = _phase(server, "/bare/me", token, args, metrics=False)
            phases.append({"repeat": repeat, "server": "bare", "endpoint": "bare", **res})
            _say(repeat, "bare ", "/bare/me", res)
        with _velro(env, free_port(), log) as server:
            for name, path in paths.items():
                res = _phase(server, path, token, args, metrics=True)
                phases.append({"repeat": repeat, "server": "velro", "endpoint": name, **res})
                _say(repeat, "velro", path.split("?")[0], res)
    return phases


def _figures(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """The medians over the repeats, their ratios to bare, and the cache hit rate."""
    rps = {
        name: _median([p["rps"] for p in phases if p["endpoint"] == name])
        for name in ("bare", "me", "check")
    }
    ratios = {name: _ratio(rps[name], rps["bare"]) for name in TARGETS}
    cpu = {
        name: _median(
            [
                p["server_cpu_us_per_request"]
                for p in phases
                if p["endpoint"] == name and p["server_cpu_us_per_request"]
            ]
        )
        for name in ("bare", "me", "check")
    }
    # capacity on one core, from CPU time per request: bare's cost over velro's
    cpu_ratios = {name: _ratio(cpu["bare"], cpu[name]) for name in TARGETS}
    hits = sum(p["cache"]["hits"] or 0 for p in phases if "cache" in p)
    lookups = sum(p["cache"]["lookups"] or 0 for p in phases if "cache" in p)
    return {
        "rps": rps,
        "ratios": ratios,
        "targets": TARGETS,
        "meets_target": {
            name: (ratio >= target) if (ratio := ratios[name]) is not None else None
            for name, target in TARGETS.items()
        },
        "server_cpu_us_per_request": cpu,
        "cpu_ratios": cpu_ratios,
        "cache_hit_rate": (hits / lookups) if lookups else None,
    }


def _say(repeat: int, server: str, path: str, res: dict[str, Any]) -> None:
    print(
        f"[{repeat}] {server} GET {path:<21} {res['rps']:>9.1f} rps  "
        f"server {res['server_cpu_us_per_request']} µs CPU/req, "
        f"generator {res['client_cpu_us_per_request']} µs CPU/req",
        flush=True,
    )


def _children_cpu_s() -> float:
    """CPU seconds of the finished child processes (the load generators; servers still run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _phase(
    server: Server, path: str, token: str, args: argparse.Namespace, *, metrics: bool
) -> dict[str, Any]:
    """Check, warm up (not counted), then measure one endpoint; the same for both servers.

    Beside requests per second, the server's CPU time per request over the measured window:
    on a machine shared with other work, rps moves with the neighbours' load, CPU time per
    request much less.
    """
    base = server.url
    _check_ok(base + path, token)
    if args.warmup > 0:
        # fills the caches and the connection pools; its figures are thrown away
        _load(base + path, token, args.warmup, 0.0, args.connections)
    before = _metrics(base) if metrics else None
    cpu_before, client_before = server.cpu_s(), _children_cpu_s()
    res = _load(base + path, token, 0.0, args.duration, args.connections)
    cpu, client = server.cpu_s() - cpu_before, _children_cpu_s() - client_before
    n = res["requests"]
    res["server_cpu_us_per_request"] = round(cpu / n * 1e6, 1) if n else None
    # the generator's own cost: when it nears the server's, the generator sets the pace
    res["client_cpu_us_per_request"] = round(client / n * 1e6, 1) if n else None
    if metrics:
        res["cache"] = _hit_rate(before, _metrics(base))
    return res


def _fmt(value: float | None, spec: str) -> str:
    return format(value, spec) if value is not None else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.throughput", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--duration", type=float, default=10.0, metavar="S", help="per phase")
    parser.add_argument("--warmup", type=float, default=3.0, metavar="S", help="per phase")
    parser.add_argument("--repeats", type=int, default=2, help="bare/velro pairs (default 2)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-redis", action="store_true", help="velro without Redis")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/throughput.json"))
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.repeats < 1 or args.connections < 1:
        parser.error("give --duration > 0, --repeats >= 1 and --connections >= 1")
    try:
        doc = run(args)
    except (RuntimeError, httpx.HTTPError, subprocess.TimeoutExpired) as exc:
        print(f"throughput: failed: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    rps, ratios = doc["rps"], doc["ratios"]
    print()
    print(f"bare  GET /bare/me             {_fmt(rps['bare'], '>9.1f')} rps (median)")
    for name, path in (("me", "/api/v1/auth/me"), ("check", "/api/v1/authz/check")):
        print(
            f"velro GET {path:<20} {_fmt(rps[name], '>9.1f')} rps (median)  "
            f"{_fmt(ratios[name], '.0%')} of bare (target >= {TARGETS[name]:.0%})"
        )
    cpu, cpu_ratios = doc["server_cpu_us_per_request"], doc["cpu_ratios"]
    print(
        f"server CPU per request (median): bare {_fmt(cpu['bare'], '.0f')} µs, "
        f"me {_fmt(cpu['me'], '.0f')} µs ({_fmt(cpu_ratios['me'], '.0%')} of bare's capacity), "
        f"check {_fmt(cpu['check'], '.0f')} µs ({_fmt(cpu_ratios['check'], '.0%')})"
    )
    print(f"cache hit rate over the measured windows: {_fmt(doc['cache_hit_rate'], '.1%')}")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""CPU seconds of the processes on this machine, read from /proc, so a step's hold can be
split into what the service, the load generator, the data stores and everything else used.

A snapshot is taken at each end of the hold; the difference is the CPU each group used over
exactly the hold (utime + stime of each process, `/proc/<pid>/stat` through psutil; the
machine's busy time from `/proc/stat`). A process that starts during the hold counts from its
start; one that ends during it is lost (none should: the service and Locust live across the
whole search).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import psutil

__all__ = ["DATA_STORE_NAMES", "CpuGroups", "CpuSnapshot", "CpuSplit", "take_snapshot"]

# the data stores the reference service uses, by process name: Redis and PostgreSQL
DATA_STORE_NAMES = ("redis-server", "postgres", "postmaster")


@dataclass(frozen=True)
class CpuGroups:
    """The roots of the process trees to account for (None: not on this machine)."""

    service: int | None
    generator: int | None
    runner: int = field(default_factory=os.getpid)


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    machine_busy_s: float
    service_s: float
    generator_s: float
    stores_s: float
    runner_s: float


@dataclass(frozen=True)
class CpuSplit:
    """CPU seconds each group used between two snapshots."""

    seconds: float  # wall-clock length
    service_s: float | None
    generator_s: float
    stores_s: float
    runner_s: float
    other_s: float  # the machine's busy time not in any group above
    machine_s: float
    cores: int

    @classmethod
    def between(cls, a: CpuSnapshot, b: CpuSnapshot, has_service: bool, cores: int) -> CpuSplit:
        service = b.service_s - a.service_s
        generator = b.generator_s - a.generator_s
        stores = b.stores_s - a.stores_s
        runner = b.runner_s - a.runner_s
        machine = b.machine_busy_s - a.machine_busy_s
        return cls(
            seconds=b.at - a.at,
            service_s=service if has_service else None,
            generator_s=generator,
            stores_s=stores,
            runner_s=runner,
            other_s=max(0.0, machine - service - generator - stores - runner),
            machine_s=machine,
            cores=cores,
        )

    def per_request_ms(self, requests: int) -> dict[str, float | None]:
        """Each group's CPU per request, in milliseconds of one core."""

        def per(value: float | None) -> float | None:
            return None if value is None or requests <= 0 else 1000.0 * value / requests

        return {
            "service": per(self.service_s),
            "generator": per(self.generator_s),
            "data_stores": per(self.stores_s),
            "runner": per(self.runner_s),
            "other": per(self.other_s),
            "machine": per(self.machine_s),
        }


def _tree_cpu(root: int | None) -> float:
    if root is None:
        return 0.0
    try:
        top = psutil.Process(root)
        procs = [top, *top.children(recursive=True)]
    except psutil.Error:
        return 0.0
    return _cpu_of(procs)


def _cpu_of(procs: Iterable[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def _stores_cpu() -> float:
    procs = []
    for proc in psutil.process_iter(["name"]):
        name = proc.info.get("name") or ""
        if name in DATA_STORE_NAMES:
            procs.append(proc)
    return _cpu_of(procs)


def _machine_busy() -> float:
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return (
        float(sum(times)) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    )


def take_snapshot(groups: CpuGroups, at: float) -> CpuSnapshot:
    return CpuSnapshot(
        at=at,
        machine_busy_s=_machine_busy(),
        service_s=_tree_cpu(groups.service),
        generator_s=_tree_cpu(groups.generator),
        stores_s=_stores_cpu(),
        runner_s=_cpu_of([psutil.Process(groups.runner)]),
    )

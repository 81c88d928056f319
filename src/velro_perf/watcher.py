"""Watch the load generator's own CPU, so a saturated generator is caught, not believed.

A Locust process is single-threaded (gevent): past about 90 % of one core its timers slip and
the latencies it records include its own queueing. Every second this samples the CPU of each
process of the Locust tree (master and workers), and appends to generator.jsonl the busiest
process's share, the total, the memory, and the users and requests per second Locust reports.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import psutil

from velro_perf.progress import StatsHistoryTail
from velro_perf.reports.runfiles import GeneratorSample
from velro_perf.sidecar import Sidecar, append_json_line

__all__ = ["GeneratorWatcher"]


class GeneratorWatcher(Sidecar):
    """Samples the process tree rooted at `pid` every `interval_s` into `out`."""

    def __init__(
        self,
        pid: int,
        out: Path,
        stats: StatsHistoryTail | None = None,
        intended_rps: float | None = None,
        interval_s: float = 1.0,
    ) -> None:
        super().__init__(name="generator-watcher")
        self.pid = pid
        self.out = out
        self.stats = stats
        self.intended_rps = intended_rps
        self.interval_s = interval_s
        self.last: GeneratorSample | None = None
        self.cpu_max_seen = 0.0
        self._procs: dict[int, psutil.Process] = {}

    def run(self) -> None:
        self._refresh()  # primes cpu_percent: its first call for a process always reads 0.0
        while not self._stop_event.wait(self.interval_s):
            sample = self.sample()
            if sample is None:
                return  # the generator is gone
            append_json_line(self.out, sample)

    def descendants_seen(self) -> list[int]:
        """The pids of the tree as it is now (the root included)."""
        try:
            root = psutil.Process(self.pid)
            return [root.pid, *(p.pid for p in root.children(recursive=True))]
        except psutil.Error:
            return []

    def _refresh(self) -> list[psutil.Process]:
        """The processes of the tree now; new ones are primed and skipped for this tick."""
        try:
            root = psutil.Process(self.pid)
            current = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        ready = []
        seen = set()
        for proc in current:
            seen.add(proc.pid)
            known = self._procs.get(proc.pid)
            if known is None:
                with contextlib.suppress(psutil.Error):
                    proc.cpu_percent(None)
                    self._procs[proc.pid] = proc
            else:
                ready.append(known)
        for pid in list(self._procs):
            if pid not in seen:
                del self._procs[pid]
        return ready

    def sample(self) -> GeneratorSample | None:
        procs = self._refresh()
        if not self._procs:
            return None
        cpus: list[float] = []
        rss = 0
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                cpus.append(proc.cpu_percent(None))
                rss += proc.memory_info().rss
        stats = self.stats.latest() if self.stats is not None else None
        sample: GeneratorSample = {
            "ts": round(time.time(), 3),
            "cpu_percent_max": round(max(cpus, default=0.0), 1),
            "cpu_percent_total": round(sum(cpus), 1),
            "rss_mb": round(rss / 2**20, 1),
            "processes": len(self._procs),
            "users": stats.users if stats else None,
            "intended_rps": self.intended_rps,
            "achieved_rps": stats.rps if stats else None,
        }
        self.cpu_max_seen = max(self.cpu_max_seen, sample["cpu_percent_max"])
        self.last = sample
        return sample

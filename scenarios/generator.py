"""Keep the load generator's garbage collector out of the measured phase.

Measured on this suite: a collection pause in the generator turned a max latency of 159 ms
into 1,031 ms, a pause the service never caused. So at test start each generating process
collects once, freezes the survivors (gc.freeze: they are never scanned again) and disables
the collector; at test stop the collector comes back. A process whose memory still grows
past the RSS limit is collected anyway (memory is worse than one pause), and that
collection is recorded with its time and duration so the report can name it.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

__all__ = ["GcGuard"]


class GcGuard:
    """What this process did to its garbage collector, for <out>/generator_actions.json."""

    def __init__(self, rss_limit_mb: float = 2048.0) -> None:
        self.rss_limit_mb = rss_limit_mb
        self.actions: dict[str, Any] = {"pid": os.getpid(), "gc": "untouched"}
        self.active = False

    def test_start(self) -> None:
        began = time.perf_counter()
        collected = gc.collect()
        gc.freeze()
        gc.disable()
        self.active = True
        self.actions = {
            "pid": os.getpid(),
            "gc": "collected, frozen and disabled for the test",
            "collected_objects": collected,
            "frozen_objects": gc.get_freeze_count(),
            "collect_ms": (time.perf_counter() - began) * 1000,
            "disabled_at": time.time(),
            "enabled_at": None,
            "forced_collections": [],
            "rss_limit_mb": self.rss_limit_mb,
        }

    def test_stop(self) -> None:
        if not self.active:
            return
        gc.unfreeze()
        gc.enable()
        self.active = False
        self.actions["enabled_at"] = time.time()

    def check_memory(self, rss_mb: float) -> None:
        """Collect once if the process outgrew the limit while the collector was off."""
        if not self.active or rss_mb < self.rss_limit_mb:
            return
        began = time.perf_counter()
        collected = gc.collect()
        self.actions["forced_collections"].append(
            {
                "ts": time.time(),
                "rss_mb": rss_mb,
                "collected_objects": collected,
                "pause_ms": (time.perf_counter() - began) * 1000,
            }
        )
        # memory a collection frees is not always returned to the OS: raise the bar so a
        # process that stays big is not collected on every check
        self.rss_limit_mb = max(self.rss_limit_mb, rss_mb * 1.25)

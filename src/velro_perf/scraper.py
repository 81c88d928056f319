"""Scrape the service's own figures (`GET /api/v1/performance/metrics`) into metrics.jsonl.

Another backend may not serve that route: a 404 (or 405) stops the scraper quietly and leaves
no metrics.jsonl, which the report reads as "the target does not serve it".
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from velro_perf.reports.runfiles import MetricsScrape
from velro_perf.sidecar import Sidecar, append_json_line

__all__ = ["METRICS_PATH", "MetricsScraper"]

METRICS_PATH = "/api/v1/performance/metrics"


class MetricsScraper(Sidecar):
    """Every `interval_s`, append `{"ts", "metrics"}` to `out`; `stop()` ends it."""

    def __init__(self, base_url: str, out: Path, interval_s: float = 2.0) -> None:
        super().__init__(name="metrics-scraper")
        self.url = base_url.rstrip("/") + METRICS_PATH
        self.out = out
        self.interval_s = interval_s
        self.scrapes = 0
        self.errors = 0
        self.unsupported = False

    def run(self) -> None:
        with httpx.Client(timeout=min(self.interval_s, 5.0)) as client:
            while not self._stop_event.is_set():
                started = time.monotonic()
                if not self.scrape_once(client):
                    return
                self._stop_event.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def scrape_once(self, client: httpx.Client) -> bool:
        """One scrape; False when the target does not serve the route (stop scraping)."""
        ts = time.time()
        try:
            response = client.get(self.url)
        except httpx.HTTPError:
            self.errors += 1  # a busy or restarting service: try again next tick
            return True
        if response.status_code in {404, 405}:
            self.unsupported = True
            return False
        if response.status_code != 200:
            self.errors += 1
            return True
        try:
            body = response.json()
        except ValueError:
            self.errors += 1
            return True
        scrape: MetricsScrape = {"ts": ts, "metrics": body}
        append_json_line(self.out, scrape)
        self.scrapes += 1
        return True

"""The metrics scraper and the generator watcher."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from velro_perf.procs import spawn

ROOT = Path(__file__).resolve().parents[1]


# -- scraper and watcher ---------------------------------------------------------------------


def test_the_scraper_records_the_metrics_and_stops_quietly_on_404(
    tmp_path: Path, make_settings: Any, live_server: Any
) -> None:
    import httpx

    from velro_perf.scraper import MetricsScraper

    server = live_server(make_settings())
    out = tmp_path / "metrics.jsonl"
    scraper = MetricsScraper(server.url, out, interval_s=0.1)
    with httpx.Client(timeout=5) as client:
        assert scraper.scrape_once(client) is True
        assert scraper.scrape_once(client) is True
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 2
        assert {"ts", "metrics"} <= rows[0].keys()
        assert isinstance(rows[0]["metrics"], dict)

        elsewhere = MetricsScraper(server.url, tmp_path / "none.jsonl")
        elsewhere.url = server.url + "/api/v1/no-such-route"  # a backend without the route
        assert elsewhere.scrape_once(client) is False
    assert elsewhere.unsupported
    assert not (tmp_path / "none.jsonl").exists()


SPINNER = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen(["sleep", "30"])
    end = time.monotonic() + 30
    while time.monotonic() < end:
        pass
    """
)


def test_the_watcher_samples_every_process_of_the_generator_tree(tmp_path: Path) -> None:
    from velro_perf.watcher import GeneratorWatcher

    proc = spawn("spinner", [sys.executable, "-c", SPINNER])
    try:
        watcher = GeneratorWatcher(proc.pid, tmp_path / "generator.jsonl", intended_rps=5.0)
        deadline = time.monotonic() + 10
        while len(watcher.descendants_seen()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        watcher.sample()  # primes both processes
        time.sleep(1.0)
        sample = watcher.sample()
    finally:
        proc.stop(grace_s=2.0)
    assert sample is not None
    assert sample["processes"] == 2
    assert sample["cpu_percent_max"] > 0  # the spinning parent
    assert sample["cpu_percent_total"] >= sample["cpu_percent_max"]
    assert sample["rss_mb"] > 0
    assert sample["intended_rps"] == 5.0
    assert sample["users"] is None  # no Locust statistics to read

"""A one-hour run (a million requests) renders in seconds and a few hundred MB.

The figures are measured and printed, not asserted as a timing test (performance belongs to
benchmarks, and this machine is shared); only a generous memory ceiling is asserted as a sanity
bound, in a fresh subprocess so that pytest's own memory and the synthetic data's do not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from velro_perf.reports.budgets import load_budgets
from velro_perf.reports.synthetic import write_synthetic_run

PROJECT = Path(__file__).resolve().parents[1]
MEMORY_CEILING_MB = 750  # a sanity bound; the target, under 500 MB, is printed

PROBE = """
import json, resource, sys, time
from pathlib import Path
from velro_perf.reports.render import render_report
start = time.perf_counter()
out = render_report(Path(sys.argv[1]))
elapsed = time.perf_counter() - start
# VmHWM (peak RSS) of this process image: getrusage's ru_maxrss would carry over the
# memory of the pytest process this one was forked from (it survives execve)
status = Path("/proc/self/status").read_text()
hwm = [line for line in status.splitlines() if line.startswith("VmHWM:")]
if hwm:
    rss_mb = int(hwm[0].split()[1]) / 1024
else:
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "max_rss_mb": rss_mb, "bytes": out.stat().st_size,
                  "pyplot": "matplotlib.pyplot" in sys.modules}))
"""


@pytest.mark.slow
def test_a_one_hour_million_request_run_renders(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = write_synthetic_run(
        runs / "20261125-200000-steady-fixed", n=1_000_000, duration_s=3600.0, warmup_s=60.0
    )
    ids = [b.id for b in load_budgets(PROJECT / "fixtures" / "budgets.toml")]
    rng = np.random.default_rng(3)
    history = pd.DataFrame(
        {
            "run_id": [f"run-{i:04d}" for i in range(3600)],
            "started_at": pd.date_range("2026-01-01", periods=3600, freq="h").astype(str),
            "config_hash": "synthetic-config",
            "shape": "steady",
            "service_profile": "fixed",
            "target": "synthetic",
            "verdict": "pass",
            "requests": 1_000_000,
            "rps": 280.0,
            **{i: rng.uniform(5, 50, 3600) for i in ids},
        }
    )
    history.to_csv(runs / "history.csv", index=False)

    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(run)],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT,
        timeout=300,
    )
    figures = json.loads(probe.stdout.strip().splitlines()[-1])
    print(
        f"\none-hour run, 1,000,000 requests: rendered in {figures['seconds']:.2f} s, "
        f"peak RSS {figures['max_rss_mb']:.0f} MB, report {figures['bytes'] / 1e6:.2f} MB"
    )
    html = (run / "report.html").read_text(encoding="utf-8")
    for budget_id in ids:
        assert f'data-budget="{budget_id}"' in html
    assert "the last 30 runs with config_hash" in html
    assert figures["max_rss_mb"] < MEMORY_CEILING_MB
    assert figures["pyplot"] is False  # library code draws on Figure(), never through pyplot

"""The CI gate tells the two profiles apart under the same smoke load.

The fixed profile's smoke run is `make gate` in CI; this test runs the degraded profile
under the same load (the smoke shape's users and waits, held 20 s: the degraded profile's
failures need no 40-s hold to show) and checks that the gate fails it, for the reasons the
story predicts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import short_smoke

pytestmark = [pytest.mark.slow, pytest.mark.redis]


def test_the_gate_fails_the_degraded_profile_under_the_smoke_shape(
    tmp_path: Path, redis_server: str
) -> None:
    velro_perf = Path(sys.executable).parent / "velro-perf"
    done = subprocess.run(
        [
            str(velro_perf),
            "run",
            "--shape",
            "smoke",
            "--shapes",
            str(short_smoke(tmp_path)),
            "--service-profile",
            "degraded",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    (run_dir,) = tmp_path.glob("*-smoke-degraded")
    summary = json.loads((run_dir / "summary.json").read_text())
    verdicts = {b["id"]: b["verdict"] for b in summary["budgets"]}
    assert summary["verdict"] == "fail"
    # every cache tier is off in the degraded profile: nothing can hit
    assert verdicts["cache.hit_rate"] == "fail"
    assert (run_dir / "report.html").is_file()

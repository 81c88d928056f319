"""A real browser opens a rendered report from disk: every chart decodes, nothing is fetched.

Headless Chromium loads the file with networking features off, runs for a few seconds of
virtual time (so every load handler has run), and dumps the DOM. The report's own inline script
marks <body> with the number of images, of decoded images and of non-data: resources fetched.
A control page with one external image shows that the fetch counter does count.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from velro_perf.reports.render import render_report
from velro_perf.reports.synthetic import write_synthetic_run

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MARKERS = re.compile(
    r'<body[^>]*data-images="(\d+)"[^>]*data-images-loaded="(\d+)"[^>]*data-fetched="(\d+)"'
)
CONTROL = """<!doctype html><html><body><img src="http://127.0.0.1:9/absent.png">
<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var fetched = performance.getEntriesByType("resource")
    .filter(function (e) { return e.name.indexOf("data:") !== 0; }).length;
  document.body.setAttribute("data-images", String(imgs.length));
  document.body.setAttribute("data-images-loaded", String(ok));
  document.body.setAttribute("data-fetched", String(fetched));
});
</script></body></html>
"""


def open_in_chromium(page: Path, profile: Path) -> tuple[int, int, int]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    out = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    match = MARKERS.search(out.stdout)
    assert match, f"the page's marker script did not run: {out.stdout[:300]!r}"
    images, loaded, fetched = (int(g) for g in match.groups())
    return images, loaded, fetched


def test_every_chart_loads_and_nothing_is_fetched(tmp_path: Path) -> None:
    fixed = write_synthetic_run(tmp_path / "runs" / "20261125-120000-steady-fixed", n=3000)
    write_synthetic_run(
        tmp_path / "runs" / "20261125-110000-steady-degraded",
        n=3000,
        profile="degraded",
        latency_scale=30.0,
        start=1_763_990_000.0,
    )
    report = render_report(fixed)
    images, loaded, fetched = open_in_chromium(report, tmp_path / "profile")
    assert images >= 8  # run charts plus the story's
    assert loaded == images
    assert fetched == 0


def test_the_fetch_counter_counts_an_external_resource(tmp_path: Path) -> None:
    page = tmp_path / "control.html"
    page.write_text(CONTROL, encoding="utf-8")
    images, loaded, fetched = open_in_chromium(page, tmp_path / "profile")
    assert (images, loaded) == (1, 0)
    assert fetched == 1

"""Comparing two runs endpoint by endpoint: did latency really change?

Per endpoint, the change of p50, p95 and p99 comes with a 95 % confidence interval built from
the two percentiles' own distribution-free intervals at 97.5 % each (Bonferroni: both hold
together with probability >= 95 %, so the difference lies between current.low - baseline.high
and current.high - baseline.low). Whether the two latency distributions differ at all is
Mann-Whitney's U test (two-sided) on the samples, on a deterministic random subsample of at
most MW_MAX_SAMPLES per run when a run is larger (the test's cost grows with n, and beyond
tens of thousands it finds any difference at all significant anyway).

A verdict needs both significance and a change that matters:

    regressed  p < ALPHA and p50 or p95 grew by at least MIN_RELATIVE (10 %) and MIN_ABS_MS (1 ms)
    improved   p < ALPHA and p50 or p95 shrank by at least as much
    unchanged  anything else (including a significant change too small to matter)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scipy import stats as sps

from velro_perf.reports import charts
from velro_perf.reports.loading import RunData, load_run

__all__ = [
    "ALPHA",
    "MIN_ABS_MS",
    "MIN_RELATIVE",
    "MW_MAX_SAMPLES",
    "Comparison",
    "EndpointChange",
    "compare_runs",
    "render_comparison",
]

ALPHA = 0.01
MIN_RELATIVE = 0.10
MIN_ABS_MS = 1.0
MW_MAX_SAMPLES = 50_000
QS = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0))
_SEED = 20_250_810  # fixed: the same two runs always give the same p-value


@dataclass(frozen=True)
class QuantileChange:
    """One percentile in both runs and the change with its 95 % interval (None: unbounded)."""

    baseline: float | None
    current: float | None
    delta: float | None
    delta_low: float | None
    delta_high: float | None
    relative: float | None


@dataclass(frozen=True)
class EndpointChange:
    endpoint: str
    n_baseline: int
    n_current: int
    quantiles: dict[str, QuantileChange]
    p_value: float | None
    verdict: str  # regressed | improved | unchanged | not_compared
    reason: str


@dataclass
class Comparison:
    baseline_id: str
    current_id: str
    rows: list[EndpointChange] = field(default_factory=list)
    regressed: bool = False
    warnings: list[str] = field(default_factory=list)
    rule: str = (
        f"regressed/improved: Mann-Whitney p < {ALPHA} and p50 or p95 changed by at least "
        f"{MIN_RELATIVE * 100:g} % and {MIN_ABS_MS:g} ms"
    )


def compare_runs(baseline_dir: Path, current_dir: Path) -> Comparison:
    """Compare the judged samples (after warm-up, setup excluded) of two run directories."""
    base, cur = load_run(baseline_dir), load_run(current_dir)
    b_n = {e.endpoint: e.n for e in base.samples.endpoint_stats(())}
    c_n = {e.endpoint: e.n for e in cur.samples.endpoint_stats(())}
    cmp = Comparison(_run_id(base), _run_id(cur), warnings=_warnings(base, cur))
    for endpoint in sorted(set(b_n) | set(c_n)):
        if endpoint in b_n and endpoint in c_n:
            cmp.rows.append(_compare_endpoint(endpoint, base, cur))
        else:
            only = "baseline" if endpoint in b_n else "current"
            cmp.rows.append(
                EndpointChange(
                    endpoint,
                    b_n.get(endpoint, 0),
                    c_n.get(endpoint, 0),
                    {},
                    None,
                    "not_compared",
                    f"requests only in the {only} run",
                )
            )
    cmp.regressed = any(r.verdict == "regressed" for r in cmp.rows)
    return cmp


def _run_id(data: RunData) -> str:
    return str(data.meta.get("run_id") or data.run_dir.name)


def _warnings(base: RunData, cur: RunData) -> list[str]:
    out = []
    hb, hc = base.config.get("config_hash"), cur.config.get("config_hash")
    if hb != hc:
        out.append(
            f"The runs' configurations differ (config_hash {hb} against {hc}): a change may come "
            "from the configuration, not the code."
        )
    for label, d in (("baseline", base), ("current", cur)):
        if not d.meta.get("complete", False):
            out.append(f"The {label} run {_run_id(d)} is incomplete.")
        if d.shape != base.shape or d.shape != cur.shape:
            out.append(f"The runs have different shapes ({base.shape} against {cur.shape}).")
            break
    return out


def _compare_endpoint(endpoint: str, base: RunData, cur: RunData) -> EndpointChange:
    quantiles = {}
    n_base = n_cur = 0
    for name, q in QS:
        ib = base.samples.interval((endpoint,), q, 0.975)
        ic = cur.samples.interval((endpoint,), q, 0.975)
        n_base, n_cur = ib.n, ic.n
        assert ib.value is not None
        assert ic.value is not None
        delta = ic.value - ib.value
        low = ic.low - ib.high if ic.low is not None and ib.high is not None else None
        high = ic.high - ib.low if ic.high is not None and ib.low is not None else None
        rel = delta / ib.value if ib.value > 0 else None
        quantiles[name] = QuantileChange(ib.value, ic.value, delta, low, high, rel)
    # every sample up to MW_MAX_SAMPLES, else a seeded reservoir sample of that many
    b = base.samples.latencies(endpoint, MW_MAX_SAMPLES, _SEED)
    c = cur.samples.latencies(endpoint, MW_MAX_SAMPLES, _SEED)
    test = sps.mannwhitneyu(b, c, alternative="two-sided", method="asymptotic")
    p = float(test.pvalue)
    verdict, reason = _verdict(p, quantiles)
    return EndpointChange(endpoint, n_base, n_cur, quantiles, p, verdict, reason)


def _verdict(p: float, quantiles: dict[str, QuantileChange]) -> tuple[str, str]:
    def big(qc: QuantileChange, sign: int) -> bool:
        if qc.delta is None or qc.relative is None:
            return False
        return sign * qc.delta >= MIN_ABS_MS and sign * qc.relative >= MIN_RELATIVE

    if p >= ALPHA:
        return "unchanged", f"no significant difference (Mann-Whitney p = {p:.3g})"
    for sign, word in ((1, "regressed"), (-1, "improved")):
        moved = [n for n in ("p50", "p95") if big(quantiles[n], sign)]
        if moved:
            parts = ", ".join(
                f"{n} {(quantiles[n].relative or 0) * 100:+.0f} % ({quantiles[n].delta:+.1f} ms)"
                for n in moved
            )
            return word, f"p = {p:.2g} and {parts}"
    return "unchanged", (
        f"significant (p = {p:.2g}) but p50 and p95 moved by less than {MIN_RELATIVE * 100:g} % "
        f"or {MIN_ABS_MS:g} ms"
    )


def render_comparison(cmp: Comparison, out: Path) -> Path:
    """Write the comparison as one self-contained HTML file; return its path."""
    from velro_perf.reports.render import environment  # the report's Jinja environment and filters

    rows = [r for r in cmp.rows if r.verdict != "not_compared"]
    chart = charts.bar_compare(
        [r.endpoint for r in rows],
        [r.quantiles["p95"].baseline for r in rows],
        [r.quantiles["p95"].current for r in rows],
        (f"baseline {cmp.baseline_id}", f"current {cmp.current_id}"),
        "p95 (ms, log scale)",
        "p95 per endpoint, baseline against current",
        "from the two runs' samples, every request after warm-up, setup excluded",
    )
    context: dict[str, Any] = {"cmp": cmp, "chart": chart, "qs": [n for n, _ in QS]}
    html = environment().get_template("compare.html.j2").render(**context)
    out = Path(out)
    out.write_text(html, encoding="utf-8")
    return out

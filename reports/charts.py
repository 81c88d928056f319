"""The report's charts: matplotlib Figure() objects rendered by the Agg canvas to base64 PNG.

pyplot is never imported: it keeps every figure it made alive until closed, which leaks in a
long-lived process (matplotlib, "Embed in a web application server"). Every chart function takes
already-reduced data (per-second bins, a few hundred quantiles per curve), so a one-hour run of a
million requests draws as fast as a short one.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator
from numpy.typing import NDArray

__all__ = [
    "MAX_POINTS",
    "Chart",
    "bar_compare",
    "cache_tiers",
    "cdf_by_group",
    "failures_over_time",
    "generator_health",
    "latency_over_time",
    "server_timing",
    "stalls_beside_latency",
    "time_bins",
    "trend",
    "users_and_rps",
]

MAX_POINTS = 400  # points per time-series line: beyond this the PNG shows no more detail
_DPI = 100
_WIDTH = 9.0
_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]


@dataclass(frozen=True)
class Chart:
    """A rendered chart: title, caption naming its source, and the PNG as base64."""

    title: str
    caption: str
    png_b64: str
    alt: str


def _render(fig: Figure) -> str:
    FigureCanvasAgg(fig)  # attach the Agg canvas explicitly: no global backend is touched
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return base64.b64encode(buf.getbuffer()).decode("ascii")


def _figure(height: float = 3.2, nrows: int = 1, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(_WIDTH, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def time_bins(ts: NDArray[np.float64], t0: float, duration: float) -> tuple[NDArray[np.int64], int]:
    """Integer bin of each timestamp (seconds from t0, grouped so there are <= MAX_POINTS)."""
    width = max(1, math.ceil(max(duration, 1.0) / MAX_POINTS))
    return ((ts - t0) // width).astype(np.int64), width


def _plain_log(axis: Any) -> None:
    """Log axis labelled 1, 2, 5, 10, 20, 50 ... instead of mathtext powers (cheaper to draw,
    easier to read)."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda _v, _pos: ""))


def _shade_warmup(ax: Axes, warmup_s: float | None) -> None:
    if warmup_s and warmup_s > 0:
        ax.axvspan(0, warmup_s, color="#eeeeee", zorder=0, label="warm-up")


def users_and_rps(
    t: NDArray[np.float64],
    users: NDArray[np.float64],
    rps: NDArray[np.float64],
    warmup_s: float | None,
    caption: str,
) -> Chart | None:
    if len(t) == 0:
        return None
    step = max(1, len(t) // MAX_POINTS)
    fig, (ax,) = _figure()
    _shade_warmup(ax, warmup_s)
    ax.plot(t[::step], users[::step], color=_COLORS[0], label="users")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("users", color=_COLORS[0])
    ax2 = ax.twinx()
    ax2.plot(t[::step], rps[::step], color=_COLORS[1], label="requests/s", linewidth=0.9)
    ax2.set_ylabel("requests per second", color=_COLORS[1])
    ax.set_ylim(bottom=0)
    ax2.set_ylim(bottom=0)
    return Chart(
        "Users and requests per second",
        caption,
        _render(fig),
        "Line chart of concurrent users and requests per second over the run",
    )


def latency_over_time(
    series: Mapping[str, pd.DataFrame], width_s: int, caption: str
) -> Chart | None:
    """series: category -> frame indexed by bin start (s) with columns p50, p95, p99."""
    if not series:
        return None
    k = len(series)
    ncols = 2 if k > 1 else 1
    nrows = math.ceil(k / ncols)
    fig, axes = _figure(height=2.2 * nrows + 0.4, nrows=nrows, ncols=ncols)
    for ax, (cat, frame) in zip(axes, series.items(), strict=False):
        for col, color in (("p50", _COLORS[0]), ("p95", _COLORS[4]), ("p99", _COLORS[1])):
            ax.plot(frame.index, frame[col], color=color, label=col, linewidth=0.9)
        ax.set_title(cat, fontsize=10)
        ax.set_yscale("log")
        _plain_log(ax.yaxis)
        ax.set_ylabel("ms")
        ax.grid(True, which="major", alpha=0.3)
    for ax in axes[k:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.supxlabel(f"seconds since the end of warm-up ({width_s}-s bins)", fontsize=9)
    return Chart(
        "Latency percentiles over time, per category",
        caption,
        _render(fig),
        "Small multiples of p50, p95 and p99 latency over time per category",
    )


def cdf_by_group(
    groups: Mapping[str, NDArray[np.float64]], caption: str, title: str = ""
) -> Chart | None:
    """Empirical CDF of sorted latencies per group, log x; drawn from <= ~600 points each."""
    groups = {k: v for k, v in groups.items() if len(v)}
    if not groups:
        return None
    fig, (ax,) = _figure(height=3.6)
    for i, (name, lat) in enumerate(groups.items()):
        n = len(lat)
        # even steps through the body, then ever finer steps into the tail (p99, p99.9, ...)
        probs = np.unique(np.concatenate([np.linspace(0, 1, 300), 1 - np.geomspace(1, 1 / n, 300)]))
        idx = np.clip(np.ceil(probs * n).astype(np.int64) - 1, 0, n - 1)
        ax.step(
            lat[idx],
            probs,
            where="post",
            color=_COLORS[i % len(_COLORS)],
            label=f"{name} (n={n:,})",
            linewidth=1.0,
        )
    ax.set_xscale("log")
    _plain_log(ax.xaxis)
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("fraction of requests ≤ x")
    ax.set_ylim(0, 1.01)
    for y in (0.5, 0.95, 0.99):
        ax.axhline(y, color="#999999", linewidth=0.5, linestyle=":")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return Chart(
        title or "Latency distribution (CDF), per category",
        caption,
        _render(fig),
        "Cumulative distribution of latencies per group on a log scale",
    )


def failures_over_time(
    t: NDArray[np.float64],
    unexpected: NDArray[np.float64],
    no_response: NDArray[np.float64],
    width_s: int,
    caption: str,
) -> Chart | None:
    if len(t) == 0:
        return None
    fig, (ax,) = _figure(height=2.6)
    ax.plot(t, unexpected / width_s, color=_COLORS[1], label="unexpected responses")
    ax.plot(
        t, no_response / width_s, color=_COLORS[7], label="no response (status 0)", linestyle="--"
    )
    ax.set_ylabel("per second")
    ax.set_xlabel(f"seconds since the end of warm-up ({width_s}-s bins)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    return Chart(
        "Failures over time",
        caption,
        _render(fig),
        "Unexpected responses and requests without a response per second over time",
    )


def cache_tiers(
    t: NDArray[np.float64], rates: Mapping[str, NDArray[np.float64]], caption: str
) -> Chart | None:
    if len(t) == 0 or not rates:
        return None
    fig, (ax,) = _figure(height=2.8)
    for i, (name, r) in enumerate(rates.items()):
        ax.plot(
            t,
            r * 100,
            label=name,
            color=_COLORS[i % len(_COLORS)],
            linewidth=1.6 if name.startswith("overall") else 0.9,
        )
    ax.axhline(95, color="#555555", linestyle=":", linewidth=0.8, label="PRD 95 %")
    ax.set_ylabel("hit rate (%)")
    ax.set_xlabel("seconds since the end of warm-up")
    ax.set_ylim(0, 101)
    ax.legend(fontsize=8, loc="lower right")
    return Chart(
        "Cache hit rate per tier over time",
        caption,
        _render(fig),
        "Hit rate of the L1, L2 and L3 caches and overall over time",
    )


def server_timing(table: pd.DataFrame, caption: str) -> Chart | None:
    """table: index endpoint, columns db, hash, other (mean ms), stacked horizontally."""
    if table.empty:
        return None
    fig, (ax,) = _figure(height=0.45 * len(table) + 1.2)
    left = np.zeros(len(table))
    for i, col in enumerate(table.columns):
        values = table[col].to_numpy(dtype=np.float64)
        ax.barh(
            table.index.astype(str), values, left=left, color=_COLORS[i % len(_COLORS)], label=col
        )
        left += values
    ax.set_xlabel("mean milliseconds per request (Server-Timing)")
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.tick_params(axis="y", labelsize=8)
    return Chart(
        "Where the time went, per endpoint",
        caption,
        _render(fig),
        "Stacked bars of database, hashing and other application time per endpoint",
    )


def generator_health(
    t: NDArray[np.float64],
    cpu_max: NDArray[np.float64],
    achieved: NDArray[np.float64],
    intended: NDArray[np.float64] | None,
    limit: float,
    caption: str,
) -> Chart | None:
    if len(t) == 0:
        return None
    step = max(1, len(t) // MAX_POINTS)
    fig, axes = _figure(height=4.2, nrows=2)
    ax, ax2 = axes
    ax.plot(t[::step], cpu_max[::step], color=_COLORS[0], label="busiest generator process")
    ax.axhline(limit, color=_COLORS[1], linestyle="--", linewidth=0.8, label=f"{limit:.0f} % limit")
    ax.set_ylabel("CPU (% of a core)")
    ax.set_ylim(0, max(105.0, float(np.nanmax(cpu_max)) + 5 if len(cpu_max) else 105.0))
    ax.legend(fontsize=8, loc="lower right")
    ax2.plot(t[::step], achieved[::step], color=_COLORS[2], label="achieved")
    if intended is not None and np.isfinite(intended).any():
        ax2.plot(t[::step], intended[::step], color=_COLORS[7], linestyle="--", label="intended")
    ax2.set_ylabel("requests per second")
    ax2.set_xlabel("seconds since start")
    ax2.set_ylim(bottom=0)
    ax2.legend(fontsize=8, loc="lower right")
    return Chart(
        "Generator health",
        caption,
        _render(fig),
        "Load generator CPU and achieved against intended request rate over time",
    )


def stalls_beside_latency(
    t: NDArray[np.float64],
    p99: NDArray[np.float64],
    across: tuple[NDArray[np.float64], NDArray[np.float64]],
    stalls: Sequence[tuple[str, float, float]],
    caption: str,
) -> Chart | None:
    """The target's p99 per bin (judged requests), the requests left out for a stall (dots),
    and each generator process's stalls as bands, one row of bands per process, on one time
    axis (seconds since the end of warm-up). stalls: (process, start, length) in those
    seconds."""
    if not stalls:
        return None
    fig, (ax, lanes) = _figure(height=4.0, nrows=2)
    if len(t):
        step = max(1, len(t) // MAX_POINTS)
        ax.plot(t[::step], p99[::step], color=_COLORS[0], linewidth=0.9, label="p99, judged")
    if len(across[0]):
        label = "in flight across a stall, not judged"
        ax.scatter(across[0], across[1], s=8, color=_COLORS[1], label=label)
    ax.set_yscale("log")
    _plain_log(ax.yaxis)
    ax.set_ylabel("latency (ms)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    workers = sorted({w for w, _, _ in stalls})
    for w, start, length in stalls:
        row = workers.index(w)
        lanes.broken_barh([(start, max(length, 0.05))], (row - 0.4, 0.8), color=_COLORS[1])
        ax.axvspan(start, start + length, color=_COLORS[1], alpha=0.15, linewidth=0)
    lanes.set_yticks(range(len(workers)), [w[-12:] for w in workers], fontsize=8)
    lanes.set_ylim(-0.6, len(workers) - 0.4)
    lanes.set_xlim(ax.get_xlim())
    lanes.set_xlabel("seconds since the end of warm-up")
    lanes.set_ylabel("stalled process")
    return Chart(
        "Generator stalls beside the target's latency",
        caption,
        _render(fig),
        "Latency p99 over time above bands marking when each load generator process stalled",
    )


def trend(
    labels: Sequence[str], values: Mapping[str, NDArray[np.float64]], ylabel: str, caption: str
) -> Chart | None:
    if len(labels) < 2 or not values:
        return None
    fig, (ax,) = _figure(height=3.0)
    x = np.arange(len(labels))
    for i, (name, v) in enumerate(values.items()):
        ax.plot(x, v, marker="o", markersize=3, label=name, color=_COLORS[i % len(_COLORS)])
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    _plain_log(ax.yaxis)
    tick_step = max(1, len(labels) // 10)
    ax.set_xticks(
        x[::tick_step], [str(s) for s in labels[::tick_step]], rotation=30, ha="right", fontsize=7
    )
    ax.legend(fontsize=7, ncols=2)
    ax.grid(True, alpha=0.3)
    return Chart(
        "Trend of the last runs of this configuration",
        caption,
        _render(fig),
        "Line chart of each latency budget's measured value across recent runs",
    )


def bar_compare(
    names: Sequence[str],
    before: Sequence[float | None],
    after: Sequence[float | None],
    labels: tuple[str, str],
    ylabel: str,
    title: str,
    caption: str,
    log: bool = True,
) -> Chart | None:
    if not names:
        return None
    fig, (ax,) = _figure(height=3.2)
    x = np.arange(len(names))
    b = np.array([np.nan if v is None else v for v in before], dtype=np.float64)
    a = np.array([np.nan if v is None else v for v in after], dtype=np.float64)
    ax.bar(x - 0.2, b, width=0.4, label=labels[0], color=_COLORS[7])
    ax.bar(x + 0.2, a, width=0.4, label=labels[1], color=_COLORS[0])
    if log and np.nanmin(np.concatenate([a, b, [np.inf]])) > 0:
        ax.set_yscale("log")
        _plain_log(ax.yaxis)
    ax.set_xticks(x, list(names), rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    return Chart(title, caption, _render(fig), title)

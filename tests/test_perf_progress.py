"""The progress line and the stats-history tail it reads."""

from __future__ import annotations

from pathlib import Path

from velro_perf.progress import StatsHistoryTail, format_progress

ROOT = Path(__file__).resolve().parents[1]


# -- progress ------------------------------------------------------------------------------

HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,95%,"
    "Total Request Count,Total Failure Count\n"
)


def test_the_stats_tail_reads_only_complete_new_rows(tmp_path: Path) -> None:
    path = tmp_path / "locust_stats_history.csv"
    tail = StatsHistoryTail(path)
    assert tail.latest() is None  # no file yet
    path.write_text(
        HISTORY_HEADER
        + "100,5,GET,/api/v1/auth/me,3.0,0.0,4,9,30,0\n"
        + "100,5,,Aggregated,12.5,0.5,4,9,120,2\n"
    )
    first = tail.latest()
    assert first is not None
    assert (first.users, first.requests, first.failures) == (5, 120, 2)
    with path.open("a") as fh:
        fh.write("101,8,,Aggregated,20.0,0.0,4,9,14")  # a row Locust has not finished writing
    latest = tail.latest()
    assert latest is not None
    assert latest.requests == 120
    with path.open("a") as fh:
        fh.write("0,0\n")
    latest = tail.latest()
    assert latest is not None
    assert (latest.users, latest.requests, latest.rps) == (8, 140, 20.0)


def test_a_progress_line_shows_time_users_requests_rate_failures_and_cpu(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(HISTORY_HEADER + "100,5,,Aggregated,12.5,0.5,4,9,200,1\n")
    line = format_progress(30.2, 120.0, StatsHistoryTail(path).latest(), 42.0)
    for part in ("30/120 s", "users 5", "requests 200", "rps 12.5", "failures 1", "CPU 42 %"):
        assert part in line

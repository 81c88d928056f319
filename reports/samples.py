"""A run's samples, queried out of core: exact order statistics without a row in Python.

The samples (reports.samplefiles: Parquet parts and segments in <run>/samples/, or the
samples.csv of a run recorded before) are scanned by DuckDB, which hands back only the figures:
counts, maxima and order statistics. A 30-million-request run is never loaded into memory
(docs/performance-scale.md has the measurements behind the choice).

Percentiles keep the budgets' rule, nearest rank (reports.stats): the q-th percentile of n
values is the one of rank ``nearest_rank(n, q)``. DuckDB's ``quantile_disc(x, f)`` returns the
value of rank ceil(f·n), which is that rule with f = disc_fraction(q), a hair under q/100
(tests/test_reports_samples.py holds the two equal on exact cases). A chosen rank r (a
confidence interval's ends) is asked for with f = (r - 1/2)/n, half a rank from either
neighbour, which no rounding of f·n can move.

Three views: ``samples`` (every row), ``requests`` (without `setup`), ``judged`` (requests
from the end of warm-up on), the last two once ``judge_from`` is set.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd

from velro_perf.reports.errors import RunDirError
from velro_perf.reports.histograms import RESOLUTION, write_buckets
from velro_perf.reports.samplefiles import HISTOGRAMS_DIR, SCHEMA, sample_files, samples_csv
from velro_perf.reports.stats import Interval, nearest_rank, percentile_rank_bounds

__all__ = [
    "EndpointStats",
    "SampleStore",
    "SpanStats",
    "Totals",
    "disc_fraction",
    "rank_fraction",
]

Scope = Literal["samples", "requests", "judged", "across_stalls"]
# DuckDB's working memory: the report's whole budget is 2 GiB at 30 million requests
MEMORY_LIMIT = "1GB"
_CORE = ("ts", "endpoint", "category", "latency_ms", "status", "expected")
_SQL_TYPES = {
    "ts": "DOUBLE",
    "endpoint": "VARCHAR",
    "category": "VARCHAR",
    "latency_ms": "DOUBLE",
    "status": "DOUBLE",  # a truncated last line may leave it empty: cast below
    "expected": "DOUBLE",
    "worker": "VARCHAR",
    "st_app": "DOUBLE",
    "st_db": "DOUBLE",
    "st_hash": "DOUBLE",
    "st_cache": "VARCHAR",
}


def disc_fraction(q: float) -> float:
    """The fraction for which quantile_disc returns the q-th percentile by nearest rank.

    DuckDB's rank is ceil(f·n) with no tolerance, so q/100 itself fails where q/100·n lands
    a hair above a whole number in floating point (0.9 % of 1,000 is 9.000000000000002: rank
    10, where nearest_rank says 9). One part in 1e14 less puts f·n below every such whole
    number, and moves no true fraction across one (a percentile of three decimals puts q·n/100
    at least 1e-5 from a whole number unless it is one) for up to a billion samples."""
    return q / 100.0 * (1.0 - 1e-14)


def rank_fraction(rank: int, n: int) -> float:
    """The fraction for which quantile_disc returns the value of 1-based `rank` among n."""
    return (rank - 0.5) / n


def _num(value: float) -> str:
    """A number as SQL reads it back exactly: a DOUBLE (a bare literal would be a DECIMAL,
    whose exact arithmetic is not the float rule of disc_fraction)."""
    return f"CAST({float(value)!r} AS DOUBLE)"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in_list(values: Sequence[str]) -> str:
    return "(" + ", ".join(_quote(v) for v in values) + ")" if values else "(NULL)"


@dataclass(frozen=True)
class Totals:
    """Counts over a scope: requests, unexpected answers, no answer, first and last start."""

    n: int
    unexpected: int
    no_response: int
    ts_min: float | None
    ts_max: float | None


@dataclass(frozen=True)
class EndpointStats:
    endpoint: str
    category: str
    n: int
    failures: int
    max_ms: float
    quantiles: tuple[float, ...]


@dataclass(frozen=True)
class SpanStats:
    """One time span's requests (setup excluded) and its refused sign-ins (setup 503s)."""

    requests: int
    unexpected: int
    refused: int
    no_response: int
    max_ms: float | None
    sign_ins_refused: int
    percentiles: tuple[float | None, ...]


class SampleStore:
    """The samples of one run directory, behind a DuckDB connection of its own."""

    def __init__(
        self,
        run_dir: Path,
        prefer: str = "exact",
        window: tuple[float, float] | None = None,
    ) -> None:
        """The rows when the run has them (or its histograms, with prefer="histogram",
        when it has both: `--samples both`); only those started in [window) when given."""
        self.run_dir = Path(run_dir)
        self.window = window
        self.files = sample_files(self.run_dir)
        self.histograms = sample_files(self.run_dir, HISTOGRAMS_DIR)
        if self.files and self.histograms:
            if prefer == "histogram":
                self.files = []
            else:
                self.histograms = []
        self.legacy = not self.files and not self.histograms and samples_csv(self.run_dir).exists()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._judge_from: float | None = None
        self._spill = Path(tempfile.gettempdir()) / f"velro-samples-{os.getpid()}-{id(self)}"
        self._buckets: Path | None = None

    @property
    def mode(self) -> str:
        """exact (a row per request) or histogram (HdrHistogram, 3 significant digits)."""
        return "histogram" if self.histograms else "exact"

    @property
    def source(self) -> str:
        """What the samples were read from, as a caption names it."""
        if self.histograms:
            return "histograms/ (HdrHistogram, 3 significant digits)"
        return "samples.csv" if self.legacy else "samples/ (Parquet)"

    # ------------------------------------------------------------------ connection and views

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            con = duckdb.connect()
            con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            # past the limit DuckDB spills; to the system's temporary folder, not the cwd
            con.execute(f"SET temp_directory = {_quote(str(self._spill))}")
            con.execute("SET preserve_insertion_order = false")
            if self.histograms:
                self._load_histograms(con)
            relation = self._relation()
            if self.window is not None:
                start, end = self.window
                relation = (
                    f"SELECT * FROM ({relation}) WHERE ts >= {_num(start)} AND ts < {_num(end)}"
                )
            con.execute(f"CREATE VIEW samples AS {relation}")
            self._con = con
        return self._con

    def _load_histograms(self, con: duckdb.DuckDBPyConnection) -> None:
        """The buckets into a Parquet file of the spill folder (reports.histograms), the
        histograms' other figures into the table `records`."""
        self._spill.mkdir(parents=True, exist_ok=True)
        self._buckets = self._spill / "buckets.parquet"
        con.register("raw_records", write_buckets(self.histograms, self._buckets))
        con.execute("CREATE TABLE records AS SELECT * FROM raw_records")
        con.unregister("raw_records")

    def _relation(self) -> str:
        if self.histograms:
            # each bucket as `n` rows of its value, the second's middle as their start: every
            # query of the exact mode runs unchanged on the merged histograms. unnest in the
            # select list streams; a lateral join with range(n) is planned as a materialised
            # CTE that ran out of DuckDB's memory at 10 million requests
            return (
                "SELECT ts, endpoint, category, latency_ms, status, expected, worker, "
                "st_app, st_db, st_hash, st_cache FROM ("
                "SELECT ts + 0.5 AS ts, endpoint, category, latency_ms, "
                "CAST(status AS INTEGER) AS status, "
                "CAST(expected AS TINYINT) AS expected, CAST(NULL AS VARCHAR) AS worker, "
                "CAST(NULL AS DOUBLE) AS st_app, CAST(NULL AS DOUBLE) AS st_db, "
                "CAST(NULL AS DOUBLE) AS st_hash, CAST(NULL AS VARCHAR) AS st_cache, "
                "unnest(range(n)) AS copy "
                f"FROM read_parquet({_quote(str(self._buckets))}))"
            )
        if self.files:
            paths = ", ".join(_quote(str(p)) for p in self.files)
            return f"SELECT * FROM read_parquet([{paths}])"
        if self.legacy:
            return self._csv_relation(samples_csv(self.run_dir))
        columns = ", ".join(f"CAST(NULL AS {_SQL_TYPES[f.name]}) AS {f.name}" for f in SCHEMA)
        return f"SELECT {columns} WHERE false"

    def _csv_relation(self, path: Path) -> str:
        try:
            with path.open(encoding="utf-8") as handle:
                header = next(csv.reader(handle), [""])
        except OSError as exc:
            raise RunDirError(f"{path} cannot be read ({exc}); check the file") from exc
        if header in ([], [""]):
            self.legacy = False
            return self._relation()
        missing = [c for c in _CORE if c not in header]
        if missing:
            raise RunDirError(
                f"{path} lacks column {missing[0]!r}; it must have the header of docs/run-format.md"
            )
        types = ", ".join(f"{_quote(c)}: {_quote(_SQL_TYPES.get(c, 'VARCHAR'))}" for c in header)
        raw = (
            f"read_csv({_quote(str(path))}, header = true, columns = {{{types}}}, "
            "ignore_errors = true, nullstr = '', quote = '\"')"
        )
        picked = []
        for f in SCHEMA:
            if f.name in ("status", "expected"):
                picked.append(f"CAST(coalesce({f.name}, 0) AS INTEGER) AS {f.name}")
            elif f.name in header:
                picked.append(f.name)
            else:
                picked.append(f"CAST(NULL AS {_SQL_TYPES[f.name]}) AS {f.name}")
        return (
            f"SELECT {', '.join(picked)} FROM {raw} WHERE ts IS NOT NULL AND latency_ms IS NOT NULL"
        )

    def judge_from(
        self, measured_from: float, stalls: Sequence[tuple[str, float, float]] = ()
    ) -> None:
        """Define `requests` and `judged`: the latter from `measured_from` on, without the
        requests in flight across a stall (worker, start, end) of their own generator process
        (their [ts, ts + latency] overlaps it); those are the view `across_stalls`."""
        self._judge_from = measured_from
        self.con.execute(
            "CREATE OR REPLACE VIEW requests AS SELECT * FROM samples WHERE category <> 'setup'"
        )
        self.con.execute("CREATE OR REPLACE TABLE stalls (worker VARCHAR, a DOUBLE, b DOUBLE)")
        if stalls:
            self.con.executemany("INSERT INTO stalls VALUES (?, ?, ?)", [list(s) for s in stalls])
        crossed = (
            "EXISTS (SELECT 1 FROM stalls WHERE stalls.worker = r.worker "
            "AND stalls.a < r.ts + r.latency_ms / 1000.0 AND stalls.b > r.ts)"
        )
        after = f"ts >= {_num(measured_from)}"
        self.con.execute(
            f"CREATE OR REPLACE VIEW judged AS SELECT * FROM requests AS r "
            f"WHERE {after} AND NOT {crossed}"
            if stalls
            else f"CREATE OR REPLACE VIEW judged AS SELECT * FROM requests WHERE {after}"
        )
        self.con.execute(
            f"CREATE OR REPLACE VIEW across_stalls AS SELECT * FROM requests AS r "
            f"WHERE {after} AND {crossed}"
        )

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()

    # ------------------------------------------------------------------ figures

    def totals(self, scope: Scope = "judged") -> Totals:
        row = self._rows(
            f"SELECT count(*), count(*) FILTER (WHERE expected = 0), "
            f"count(*) FILTER (WHERE status = 0), min(ts), max(ts) FROM {scope}"
        )[0]
        return Totals(int(row[0]), int(row[1] or 0), int(row[2] or 0), row[3], row[4])

    def endpoint_stats(self, qs: Sequence[float], scope: Scope = "judged") -> list[EndpointStats]:
        """Per endpoint: its category, count, failures, maximum and the qs' percentiles."""
        fractions = ", ".join(_num(disc_fraction(q)) for q in qs)
        rows = self._rows(
            f"SELECT endpoint, any_value(category), count(*), "
            f"count(*) FILTER (WHERE expected = 0), max(latency_ms), "
            f"quantile_disc(latency_ms, [{fractions}]) FROM {scope} "
            "WHERE endpoint IS NOT NULL GROUP BY endpoint"
        )
        return [
            EndpointStats(str(e), str(c or ""), int(n), int(f), float(m), tuple(map(float, qv)))
            for e, c, n, f, m, qv in rows
        ]

    def interval(
        self,
        endpoints: Sequence[str],
        q: float,
        confidence: float = 0.95,
        scope: Scope = "judged",
    ) -> Interval:
        """The q-th percentile of the endpoints' pooled latencies with its distribution-free
        confidence interval (reports.stats.percentile_ci's ranks, asked of DuckDB)."""
        where = f"endpoint IN {_in_list(endpoints)}"
        n = int(self._rows(f"SELECT count(*) FROM {scope} WHERE {where}")[0][0])
        if n == 0:
            return Interval(None, None, None, 0, confidence)
        rank = nearest_rank(n, q)
        lo, hi = percentile_rank_bounds(n, q, confidence)
        ranks = [rank, max(lo, 1), min(hi, n)]
        fractions = ", ".join(_num(rank_fraction(r, n)) for r in ranks)
        values = self._rows(
            f"SELECT quantile_disc(latency_ms, [{fractions}]) FROM {scope} WHERE {where}"
        )[0][0]
        value, low, high = (float(v) for v in values)
        if self.histograms:
            # a bucket's value is its highest equivalent: the order statistic it stands for
            # lies up to RESOLUTION below it
            low *= 1.0 - RESOLUTION
        return Interval(value, low if lo >= 1 else None, high if hi <= n else None, n, confidence)

    def window_percentiles(
        self,
        endpoints: Sequence[str],
        q: float,
        t0: float,
        width: float,
        scope: Scope = "judged",
        between: tuple[float, float] | None = None,
    ) -> dict[int, tuple[float, int]]:
        """{window: (q-th percentile, count)} of the endpoints' requests in windows of `width`
        seconds from t0 (window k holds t0 + k·width <= ts < t0 + (k+1)·width)."""
        where = f"endpoint IN {_in_list(endpoints)}"
        if between is not None:
            where += f" AND ts BETWEEN {_num(between[0])} AND {_num(between[1])}"
        rows = self._rows(
            f"SELECT CAST(floor((ts - {_num(t0)}) / {_num(width)}) AS BIGINT) AS w, "
            f"quantile_disc(latency_ms, {_num(disc_fraction(q))}), count(*) FROM {scope} "
            f"WHERE {where} GROUP BY w"
        )
        return {int(w): (float(v), int(n)) for w, v, n in rows}

    def windows(
        self,
        t0: float,
        width: float,
        scope: Scope = "judged",
        between: tuple[float, float] | None = None,
    ) -> list[int]:
        """The windows (as window_percentiles numbers them) that hold any request."""
        where = (
            "" if between is None else f"WHERE ts BETWEEN {_num(between[0])} AND {_num(between[1])}"
        )
        rows = self._rows(
            f"SELECT DISTINCT CAST(floor((ts - {_num(t0)}) / {_num(width)}) AS BIGINT) "
            f"FROM {scope} {where}"
        )
        return sorted(int(w) for (w,) in rows)

    def span_stats(
        self,
        spans: Sequence[tuple[float, float, bool]],
        bounds: Sequence[tuple[Sequence[str], float]],
    ) -> list[SpanStats]:
        """Figures of each span (start, end, end included?) of the run: its requests' counts
        and maximum, the percentile of each bound (endpoints, q), and the setup 503s."""
        if not spans:
            return []
        values = ", ".join(
            f"({i}, {_num(a)}, {_num(b)}, {'true' if closed else 'false'})"
            for i, (a, b, closed) in enumerate(spans)
        )
        # one aggregate per set of endpoints (p95 and p99 of the same ones share their values)
        groups: dict[tuple[str, ...], list[int]] = {}
        for k, (eps, _) in enumerate(bounds):
            groups.setdefault(tuple(eps), []).append(k)
        percentile = [
            "quantile_disc(latency_ms, ["
            + ", ".join(_num(disc_fraction(bounds[k][1])) for k in ks)
            + f"]) FILTER (WHERE category <> 'setup' AND endpoint IN {_in_list(eps)})"
            for eps, ks in groups.items()
        ]
        request = "category <> 'setup'"
        # spans follow one another: an ASOF join gives each row the last span started by then
        sql = f"""
            WITH spans(i, a, b, closed) AS (VALUES {values})
            SELECT i,
                count(*) FILTER (WHERE {request}),
                count(*) FILTER (WHERE {request} AND expected = 0),
                count(*) FILTER (WHERE {request} AND status IN (503, 429)),
                count(*) FILTER (WHERE {request} AND status = 0),
                max(latency_ms) FILTER (WHERE {request}),
                count(*) FILTER (WHERE category = 'setup' AND status = 503)
                {"".join(", " + p for p in percentile)}
            FROM samples ASOF JOIN spans ON ts >= a
            WHERE ts < b OR (closed AND ts = b)
            GROUP BY i
        """
        found = {int(r[0]): r for r in self._rows(sql)}
        out = []
        for i in range(len(spans)):
            r = found.get(i)
            if r is None:
                out.append(SpanStats(0, 0, 0, 0, None, 0, tuple(None for _ in bounds)))
                continue
            per_bound: list[float | None] = [None] * len(bounds)
            for ks, values in zip(groups.values(), r[7:], strict=True):
                for k, v in zip(ks, values or [None] * len(ks), strict=True):
                    per_bound[k] = None if v is None else float(v)
            out.append(
                SpanStats(
                    int(r[1]),
                    int(r[2]),
                    int(r[3]),
                    int(r[4]),
                    None if r[5] is None else float(r[5]),
                    int(r[6]),
                    tuple(per_bound),
                )
            )
        return out

    # ------------------------------------------------------------------ charts

    def binned_percentiles(
        self,
        t0: float,
        width: int,
        qs: Sequence[float],
        scope: Scope = "judged",
        by_category: bool = True,
    ) -> pd.DataFrame:
        """Per category (or over all, category "all") and time bin of `width` seconds from t0:
        the qs' percentiles."""
        fractions = ", ".join(_num(disc_fraction(q)) for q in qs)
        group = "category" if by_category else "'all'"
        rows = self._rows(
            f"SELECT {group} AS category, CAST(floor((ts - {_num(t0)}) / {width}) AS BIGINT) AS bin"
            f", quantile_disc(latency_ms, [{fractions}]) FROM {scope} GROUP BY 1, bin"
        )
        return pd.DataFrame(
            [(c, b, *v) for c, b, v in rows], columns=["category", "bin", *map(str, qs)]
        )

    def binned_failures(self, t0: float, width: int, scope: Scope = "judged") -> pd.DataFrame:
        rows = self._rows(
            f"SELECT CAST(floor((ts - {_num(t0)}) / {width}) AS BIGINT) AS bin, "
            "count(*) FILTER (WHERE expected = 0), count(*) FILTER (WHERE status = 0) "
            f"FROM {scope} GROUP BY bin ORDER BY bin"
        )
        return pd.DataFrame(rows, columns=["bin", "unexpected", "no_response"])

    def category_quantiles(
        self, probs: Sequence[float], scope: Scope = "judged"
    ) -> dict[str, tuple[int, list[float]]]:
        """{category: (count, the values at the fractions `probs`)}: a CDF, exact at each."""
        fractions = ", ".join(_num(p) for p in probs)
        rows = self._rows(
            f"SELECT category, count(*), quantile_disc(latency_ms, [{fractions}]) "
            f"FROM {scope} GROUP BY category ORDER BY category"
        )
        return {str(c): (int(n), [float(v) for v in vs]) for c, n, vs in rows}

    def server_timing_means(self, scope: Scope = "judged") -> tuple[pd.DataFrame, int]:
        """Per endpoint, the means of st_app, st_db, st_hash over the responses that carried
        Server-Timing; and how many did."""
        if self.histograms:
            cut = self._judge_from if scope == "judged" and self._judge_from is not None else None
            where = (
                "WHERE st_n > 0 AND category <> 'setup'" if scope != "samples" else "WHERE st_n > 0"
            )
            if cut is not None:
                where += f" AND ts + 0.5 >= {_num(cut)}"
            rows = self._rows(
                "SELECT endpoint, sum(st_app) / sum(st_n), sum(st_db) / sum(st_n), "
                f"sum(st_hash) / sum(st_n), sum(st_n) FROM records {where} "
                "GROUP BY endpoint ORDER BY endpoint"
            )
            frame = pd.DataFrame(rows, columns=["endpoint", "app", "db", "hash", "n"])
            return frame.set_index("endpoint"), int(frame["n"].sum()) if len(frame) else 0
        rows = self._rows(
            "SELECT endpoint, avg(st_app), avg(coalesce(st_db, 0)), avg(coalesce(st_hash, 0)), "
            f"count(*) FROM {scope} WHERE st_app IS NOT NULL GROUP BY endpoint ORDER BY endpoint"
        )
        frame = pd.DataFrame(rows, columns=["endpoint", "app", "db", "hash", "n"])
        return frame.set_index("endpoint"), int(frame["n"].sum()) if len(frame) else 0

    # ------------------------------------------------------------------ rows, for small uses

    def latencies(
        self, endpoint: str, limit: int, seed: int, scope: Scope = "judged"
    ) -> list[float]:
        """An endpoint's latencies, all of them up to `limit`, else a seeded sample of it."""
        where = f"endpoint = {_quote(endpoint)}"
        n = int(self._rows(f"SELECT count(*) FROM {scope} WHERE {where}")[0][0])
        if n <= limit:
            sql = f"SELECT latency_ms FROM {scope} WHERE {where}"
        else:
            sql = (
                f"SELECT latency_ms FROM {scope} WHERE {where} "
                f"USING SAMPLE reservoir({limit} ROWS) REPEATABLE ({seed})"
            )
        return [float(v) for (v,) in self._rows(sql)]

    def frame(self, columns: Sequence[str], scope: Scope = "samples") -> pd.DataFrame:
        """The chosen columns as a pandas frame: for small runs (calibration, benchmarks)."""
        names = ", ".join(c for c in columns if c in SCHEMA.names)
        return self.con.execute(f"SELECT {names} FROM {scope}").df()

    def export_csv(self, path: Path) -> int:
        """Every sample as CSV, the header of docs/run-format.md; returns the row count."""
        names = ", ".join(SCHEMA.names)
        self.con.execute("SET preserve_insertion_order = true")  # the rows in write order
        self.con.execute(
            f"COPY (SELECT {names} FROM samples) TO {_quote(str(path))} (HEADER, DELIMITER ',')"
        )
        return int(self._rows("SELECT count(*) FROM samples")[0][0])

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        shutil.rmtree(self._spill, ignore_errors=True)

    def __del__(self) -> None:
        shutil.rmtree(self._spill, ignore_errors=True)

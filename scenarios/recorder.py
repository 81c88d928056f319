"""Exact recording: every request as one row of the run's samples (docs/run-format.md).

Locust's own statistics round response times into buckets; the gate needs the exact
figures. scenarios.http records one row per request it sends. Workers hand their rows
to the master through Locust's reporting channel (`events.report_to_master`, every 3 s and
once more on quit) as one Arrow IPC batch, so the master neither unpacks nor converts a row
of it: it adds the worker's name and writes the batch as the next Parquet part of
<out>/samples/ (reports.samplefiles). A non-distributed process writes its own rows. A part
is written every couple of seconds and is whole once it is there, so an interrupted run keeps
what it measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gevent
import pyarrow as pa
import pyarrow.parquet as pq

from velro_perf.reports.histograms import new_histogram, to_units
from velro_perf.reports.samplefiles import (
    HIST_SCHEMA,
    HISTOGRAMS_DIR,
    SCHEMA,
    SampleWriter,
    table_of,
)
from velro_perf.scenarios.servertiming import parse_server_timing

__all__ = ["COLUMNS", "MODES", "SampleRecorder", "decode_batch", "encode_batch"]

# both: rows and histograms of the same requests, to hold one against the other
MODES = ("exact", "histogram", "both")

COLUMNS = tuple(SCHEMA.names)
# the columns a row carries from a worker: every one but `worker`, which the master adds
ROW_COLUMNS = tuple(name for name in COLUMNS if name != "worker")
SAMPLES_KEY = "velro_samples"

# a row as it travels from a worker: every column but `worker`, which the writer adds
Row = list[Any]


def encode_batch(rows: list[Row]) -> bytes:
    """Rows as one Arrow IPC stream (what a worker ships to the master)."""
    table = table_of(list(zip(*rows, strict=True)), ROW_COLUMNS) if rows else None
    sink = pa.BufferOutputStream()
    if table is None:
        return b""
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _warm_up() -> None:
    """Exercise the Parquet writer and the IPC stream once, before the test starts: their
    first use initialises codecs and pools for a few hundred ms, which inside the run is a
    stall of the generating loop (scenarios/stalls.py) charged to the requests in flight."""
    empty = SCHEMA.empty_table()
    pq.write_table(empty, pa.BufferOutputStream())
    with pa.ipc.new_stream(pa.BufferOutputStream(), SCHEMA) as writer:
        writer.write_table(empty)


def decode_batch(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(payload)).read_all()


# a histogram's key: (second, endpoint, category, status, expected)
Key = tuple[int, str, str, int, int]


class _Histograms:
    """Histogram mode: per key, an HdrHistogram of the latencies, the exact maximum and the
    Server-Timing sums (reports.histograms). What a worker ships instead of rows."""

    def __init__(self) -> None:
        self.entries: dict[Key, list[Any]] = {}

    def add(self, key: Key, latency_ms: float, app: float | None, db: float | None,
            hash_ms: float | None) -> None:  # fmt: skip
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = [new_histogram(), 0.0, 0, 0.0, 0.0, 0.0]
        entry[0].record_value(to_units(latency_ms))
        entry[1] = max(entry[1], latency_ms)
        if app is not None:
            entry[2] += 1
            entry[3] += app
            entry[4] += db or 0.0
            entry[5] += hash_ms or 0.0

    def take(self) -> dict[str, list[Any]]:
        """The buffered histograms as HIST_SCHEMA's columns (worker left out); then empty."""
        entries, self.entries = self.entries, {}
        columns: dict[str, list[Any]] = {name: [] for name in HIST_SCHEMA.names}
        for (second, endpoint, category, status, expected), e in entries.items():
            for name, value in zip(
                ("ts", "endpoint", "category", "status", "expected"),
                (second, endpoint, category, status, expected),
                strict=True,
            ):
                columns[name].append(value)
            columns["count"].append(e[0].get_total_count())
            columns["hdr"].append(e[0].encode())
            columns["max_ms"].append(e[1])
            columns["st_n"].append(e[2])
            columns["st_app"].append(e[3])
            columns["st_db"].append(e[4])
            columns["st_hash"].append(e[5])
        del columns["worker"]
        return columns


class SampleRecorder:
    """Buffers request rows and writes them to the run's samples/ folder."""

    def __init__(self) -> None:
        self.enabled = False
        self.mode = "exact"
        self.writer: SampleWriter | None = None
        self.hist_writer: SampleWriter | None = None
        self._rows: list[Row] = []
        self._histograms = _Histograms()
        self._out: Path | None = None
        # what arrived since the last flush (the workers' reports): written as one part by the
        # next flush, not one part a report, so a hundred workers cost no more files or fsyncs
        self._tables: list[pa.Table] = []
        self._hist_tables: list[pa.Table] = []

    def configure(self, out_dir: str | None, *, writes: bool, mode: str = "exact") -> None:
        """Record when an out dir is given; `writes` is False on workers, whose rows go to
        the master instead of a file; `mode` exact (a row per request) or histogram."""
        self.enabled = bool(out_dir)
        out = Path(out_dir) if out_dir and writes else None
        if out != self._out or mode != self.mode:
            self._out, self.mode = out, mode
            self.writer = self.hist_writer = None
            if out is not None and self.exact:
                self.writer = SampleWriter(out)
            if out is not None and self.histogram:
                self.hist_writer = SampleWriter(out, HISTOGRAMS_DIR, HIST_SCHEMA)
        if self.enabled:
            _warm_up()

    @property
    def exact(self) -> bool:
        return self.mode in ("exact", "both")

    @property
    def histogram(self) -> bool:
        return self.mode in ("histogram", "both")

    def record(
        self,
        ts: float,
        endpoint: str,
        category: str,
        latency_ms: float,
        status: int,
        expected: bool,
        server_timing: str | None,
    ) -> None:
        """One request: `ts` its start (the intended start in the open model), `endpoint`
        "METHOD name", the raw Server-Timing header (parsed here, once per request)."""
        if not self.enabled:
            return
        timing = parse_server_timing(server_timing)
        if self.histogram:
            key = (int(ts), endpoint, category, status, 1 if expected else 0)
            self._histograms.add(key, latency_ms, timing.app, timing.db, timing.hash)
            if not self.exact:
                return
        self._rows.append(
            [
                ts,
                endpoint,
                category,
                latency_ms,
                status,
                1 if expected else 0,
                timing.app,
                timing.db,
                timing.hash,
                timing.cache,
            ]
        )

    def take(self) -> list[Row]:
        rows, self._rows = self._rows, []
        return rows

    def take_histograms(self) -> dict[str, list[Any]]:
        return self._histograms.take()

    def write_histograms(self, columns: dict[str, list[Any]], worker: str) -> None:
        """Take histograms (HIST_SCHEMA's columns but `worker`) for the next part."""
        if self.hist_writer is None or not columns.get("ts"):
            return
        n = len(columns["ts"])
        arrays = [
            pa.array([worker] * n, pa.string())
            if f.name == "worker"
            else pa.array(columns[f.name], f.type)
            for f in HIST_SCHEMA
        ]
        self._hist_tables.append(pa.Table.from_arrays(arrays, schema=HIST_SCHEMA))

    def write(self, rows: list[Row] | bytes, worker: str) -> None:
        """Take rows, or a worker's encoded batch, for the next part of the samples."""
        if self.writer is None or not rows:
            return
        if isinstance(rows, bytes):
            table = decode_batch(rows)
        else:
            table = table_of(list(zip(*rows, strict=True)), ROW_COLUMNS)
        names = pa.repeat(pa.scalar(worker, pa.string()), table.num_rows)
        self._tables.append(
            table.set_column(table.schema.get_field_index("worker"), "worker", names)
        )

    def flush(self, worker: str) -> None:
        """This process's own rows and what the workers sent since the last flush, written
        as one part (of samples/, and of histograms/)."""
        if self.histogram:
            self.write_histograms(self.take_histograms(), worker)
        if self.exact:
            self.write(self.take(), worker)
        self._write_pending()

    def _write_pending(self) -> None:
        for writer, pending in ((self.writer, self._tables), (self.hist_writer, self._hist_tables)):
            if writer is not None and pending:
                # in gevent's thread pool: the write and its fsync take milliseconds that a
                # process also sending requests would otherwise add to every answer due meanwhile
                gevent.get_hub().threadpool.apply(writer.append, (pa.concat_tables(pending),))
            pending.clear()

    def close(self) -> None:
        """Write what is pending, then compact the parts into one segment (the run's end)."""
        self._write_pending()
        for writer in (self.writer, self.hist_writer):
            if writer is not None:
                writer.compact()

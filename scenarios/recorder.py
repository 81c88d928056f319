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

import pyarrow as pa

from reports.samplefiles import SCHEMA, SampleWriter, table_of
from scenarios.servertiming import parse_server_timing

__all__ = ["COLUMNS", "SampleRecorder", "decode_batch", "encode_batch"]

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


def decode_batch(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(payload)).read_all()


class SampleRecorder:
    """Buffers request rows and writes them to the run's samples/ folder."""

    def __init__(self) -> None:
        self.enabled = False
        self.writer: SampleWriter | None = None
        self._rows: list[Row] = []
        self._out: Path | None = None

    @property
    def path(self) -> Path | None:
        """The folder the samples go to (None on a worker or without an out dir)."""
        return self.writer.folder if self.writer is not None else None

    def configure(self, out_dir: str | None, *, writes: bool) -> None:
        """Record when an out dir is given; `writes` is False on workers, whose rows go to
        the master instead of a file."""
        self.enabled = bool(out_dir)
        out = Path(out_dir) if out_dir and writes else None
        if out != self._out:
            self._out = out
            self.writer = SampleWriter(out) if out is not None else None

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

    def write(self, rows: list[Row] | bytes, worker: str) -> None:
        """Append rows, or a worker's encoded batch, as the next part of the samples."""
        if self.writer is None or not rows:
            return
        if isinstance(rows, bytes):
            table = decode_batch(rows)
        else:
            table = table_of(list(zip(*rows, strict=True)), ROW_COLUMNS)
        names = pa.repeat(pa.scalar(worker, pa.string()), table.num_rows)
        self.writer.append(
            table.set_column(table.schema.get_field_index("worker"), "worker", names)
        )

    def flush(self, worker: str) -> None:
        self.write(self.take(), worker)

    def close(self) -> None:
        """Compact what is pending into one segment (at the end of a run)."""
        if self.writer is not None:
            self.writer.compact()

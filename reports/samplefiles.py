"""Where a run's samples live and how they are written: the one place for their paths.

A run's requests are Parquet files in ``<run>/samples/`` (docs/run-format.md, "samples/"):

* ``part-<seq>.parquet``: one file per flush of the recorder (every couple of seconds), written
  to a hidden temporary name, fsynced and renamed, so a file that is there is whole. A run killed
  with SIGKILL keeps every part flushed before the kill; a Parquet file's footer is written last,
  so one file per flush is what makes a cut-off run readable (one growing file would not be).
* ``seg-<first>-<last>.parquet``: the parts ``first..last`` compacted into one file, so that an
  hour-long run is tens of files rather than thousands. A part whose number a segment covers is
  ignored by readers (the writer deletes it after the segment's rename; a kill between the two
  leaves it behind, harmless).

In histogram mode (``--samples histogram``) the folder is ``<run>/histograms/`` instead, the
same parts and segments of HIST_SCHEMA rows: per second, endpoint, category, status, expected
and worker, an HdrHistogram of the latencies (reports.histograms).

Runs recorded before this format have ``samples.csv``; readers still take it (reports.samples).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "HISTOGRAMS_DIR",
    "HIST_SCHEMA",
    "LEGACY_CSV",
    "SAMPLES_DIR",
    "SCHEMA",
    "SampleWriter",
    "histograms_dir",
    "sample_files",
    "samples_csv",
    "samples_dir",
    "table_of",
]

SAMPLES_DIR = "samples"
HISTOGRAMS_DIR = "histograms"
LEGACY_CSV = "samples.csv"
# compaction: this many parts, or this many rows in them, become one segment (0 parts: never,
# for benchmarks/master_ceiling.py, which reads each part's write time)
COMPACT_PARTS = int(os.environ.get("VELRO_SAMPLES_COMPACT_PARTS", "64"))
COMPACT_ROWS = 1_000_000

SCHEMA = pa.schema(
    [
        ("ts", pa.float64()),
        ("endpoint", pa.string()),
        ("category", pa.string()),
        ("latency_ms", pa.float64()),
        ("status", pa.int32()),
        ("expected", pa.int8()),
        ("worker", pa.string()),
        ("st_app", pa.float64()),
        ("st_db", pa.float64()),
        ("st_hash", pa.float64()),
        ("st_cache", pa.string()),
    ]
)

HIST_SCHEMA = pa.schema(
    [
        ("ts", pa.int64()),  # the second the requests started in (epoch seconds, floored)
        ("endpoint", pa.string()),
        ("category", pa.string()),
        ("status", pa.int32()),
        ("expected", pa.int8()),
        ("worker", pa.string()),
        ("count", pa.int64()),
        ("hdr", pa.binary()),  # HdrHistogram.encode() of the latencies (reports.histograms)
        ("max_ms", pa.float64()),  # the exact largest latency
        ("st_n", pa.int64()),  # how many carried Server-Timing, and the sums of its parts
        ("st_app", pa.float64()),
        ("st_db", pa.float64()),
        ("st_hash", pa.float64()),
    ]
)

_PART = re.compile(r"^part-(\d+)\.parquet$")
_SEGMENT = re.compile(r"^seg-(\d+)-(\d+)\.parquet$")


def samples_dir(run_dir: Path) -> Path:
    return Path(run_dir) / SAMPLES_DIR


def histograms_dir(run_dir: Path) -> Path:
    return Path(run_dir) / HISTOGRAMS_DIR


def samples_csv(run_dir: Path) -> Path:
    """The samples file of a run recorded before the Parquet format (read-only)."""
    return Path(run_dir) / LEGACY_CSV


def _listing(folder: Path) -> tuple[dict[int, Path], list[tuple[int, int, Path]]]:
    parts: dict[int, Path] = {}
    segments: list[tuple[int, int, Path]] = []
    if not folder.is_dir():
        return parts, segments
    for entry in folder.iterdir():
        if m := _PART.match(entry.name):
            parts[int(m.group(1))] = entry
        elif m := _SEGMENT.match(entry.name):
            segments.append((int(m.group(1)), int(m.group(2)), entry))
    return parts, segments


def sample_files(run_dir: Path, folder: str = SAMPLES_DIR) -> list[Path]:
    """The run's readable sample files in write order: its segments, then the parts no
    segment covers (of samples/, or of histograms/ with `folder`)."""
    parts, segments = _listing(Path(run_dir) / folder)
    covered = [(first, last) for first, last, _ in segments]
    items = [(first, path) for first, _, path in segments]
    items += [
        (seq, path)
        for seq, path in parts.items()
        if not any(first <= seq <= last for first, last in covered)
    ]
    return [path for _, path in sorted(items)]


def _write_atomic(table: pa.Table, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        pq.write_table(table, handle, compression="zstd", compression_level=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)  # a reader, or a run killed now, never sees half a file


class SampleWriter:
    """Appends tables of samples to a run's samples/ folder (or histograms/ with its
    schema), one part per call."""

    def __init__(
        self, run_dir: Path, folder: str = SAMPLES_DIR, schema: pa.Schema = SCHEMA
    ) -> None:
        self.schema = schema
        self.folder = Path(run_dir) / folder
        self.folder.mkdir(parents=True, exist_ok=True)
        parts, segments = _listing(self.folder)
        numbers = [*parts, *(last for _, last, _ in segments)]
        self._next = max(numbers, default=0) + 1
        covered = [(first, last) for first, last, _ in segments]
        self._pending: list[tuple[int, int]] = sorted(
            (seq, pq.read_metadata(path).num_rows)
            for seq, path in parts.items()
            if not any(first <= seq <= last for first, last in covered)
        )

    def append(self, table: pa.Table) -> None:
        """Write `table` (SCHEMA's columns) as the next part; compact when enough are pending."""
        if table.num_rows == 0:
            return
        seq = self._next
        self._next += 1
        _write_atomic(table.select(self.schema.names).cast(self.schema), self._part(seq))
        self._pending.append((seq, table.num_rows))
        if len(self._pending) >= COMPACT_PARTS or self._pending_rows() >= COMPACT_ROWS:
            self.compact()

    def compact(self) -> None:
        """The pending parts as one segment (written whole, then the parts removed)."""
        if len(self._pending) < 2 or COMPACT_PARTS == 0:
            return
        seqs = [seq for seq, _ in self._pending]
        table = pa.concat_tables(pq.read_table(self._part(seq)) for seq in seqs)
        _write_atomic(table, self.folder / f"seg-{seqs[0]:08d}-{seqs[-1]:08d}.parquet")
        for seq in seqs:
            self._part(seq).unlink(missing_ok=True)
        self._pending = []

    def _pending_rows(self) -> int:
        return sum(rows for _, rows in self._pending)

    def _part(self, seq: int) -> Path:
        return self.folder / f"part-{seq:08d}.parquet"


def table_of(columns: Sequence[Sequence[object]], names: Sequence[str]) -> pa.Table:
    """A table of SCHEMA's types from column lists named `names` (missing ones all null)."""
    given = dict(zip(names, columns, strict=True))
    length = len(columns[0]) if columns else 0
    arrays = [
        pa.array(given[f.name], type=f.type) if f.name in given else pa.nulls(length, f.type)
        for f in SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=SCHEMA)

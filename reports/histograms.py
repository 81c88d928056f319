"""Latency histograms: HdrHistogram at 3 significant digits, and their buckets as numbers.

In histogram mode (``--samples histogram``) a generating process keeps, per second, endpoint,
category, status and expected, an HdrHistogram of its latencies in tenths of a microsecond instead
of one row per request; the master writes what each worker ships (reports.samplefiles,
HIST_SCHEMA) and the analysis merges them where a figure needs them. A recorded value stands
for its bucket: every latency in it is within RESOLUTION (0.1 %) below the bucket's highest
equivalent value, the value the analysis uses; verdicts widen their intervals by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hdrh.histogram import HdrHistogram
from numpy.typing import NDArray

__all__ = [
    "DIGITS",
    "RESOLUTION",
    "buckets",
    "encode_many",
    "new_histogram",
    "to_units",
    "write_buckets",
]

DIGITS = 3
UNITS_PER_MS = 10_000  # tenths of a microsecond: rounding costs under 0.1 % from 0.05 ms up
HIGHEST = 3_600_000 * UNITS_PER_MS  # an hour: a latency beyond is recorded as this
RESOLUTION = 1e-3  # 3 significant digits: a bucket is at most 0.1 % of its values wide


def new_histogram() -> HdrHistogram:
    return HdrHistogram(1, HIGHEST, DIGITS)


def to_units(latency_ms: float) -> int:
    return min(HIGHEST, max(0, round(latency_ms * UNITS_PER_MS)))


def buckets(encoded: bytes) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The recorded buckets of an encoded histogram: each one's highest equivalent value, in
    ms, and its count (hdrh's recorded-value iterator, vectorised: it is 100x faster)."""
    h = HdrHistogram.decode(encoded)
    counts = np.ctypeslib.as_array(h.counts)[: h.counts_len]
    index = np.flatnonzero(counts)
    bucket = (index >> h.sub_bucket_half_count_magnitude) - 1
    sub = (index & (h.sub_bucket_half_count - 1)) + h.sub_bucket_half_count
    first = bucket < 0
    sub = np.where(first, sub - h.sub_bucket_half_count, sub)
    bucket = np.where(first, 0, bucket)
    shift = (bucket + h.unit_magnitude).astype(np.int64)
    lowest = sub.astype(np.int64) << shift
    highest = lowest + (np.int64(1) << shift) - 1
    return highest.astype(np.float64) / UNITS_PER_MS, counts[index].astype(np.int64)


def encode_many(latency_ms: NDArray[np.float64]) -> bytes:
    """One encoded histogram of many latencies, filled in one numpy pass (what
    record_value does one value at a time; tests/test_reports_histograms.py holds them equal):
    for synthetic runs of tens of millions of requests."""
    h = new_histogram()
    if len(latency_ms) == 0:
        return bytes(h.encode())
    units = np.clip(np.rint(latency_ms * UNITS_PER_MS), 0, HIGHEST).astype(np.int64)
    # bit length of (v | sub_bucket_mask), exact through float64 for values under 2**53
    _, length = np.frexp((units | h.sub_bucket_mask).astype(np.float64))
    bucket = length.astype(np.int64) - h.unit_magnitude - (h.sub_bucket_half_count_magnitude + 1)
    sub = units >> (bucket + h.unit_magnitude)
    index = ((bucket + 1) << h.sub_bucket_half_count_magnitude) + (sub - h.sub_bucket_half_count)
    counts = np.ctypeslib.as_array(h.counts)
    counts[: h.counts_len] += np.bincount(index, minlength=h.counts_len)[: h.counts_len].astype(
        counts.dtype
    )
    h.total_count = len(units)
    h.min_value = int(units.min())
    h.max_value = int(units.max())
    return bytes(h.encode())


BUCKETS = pa.schema(
    [
        ("ts", pa.int64()),
        ("endpoint", pa.string()),
        ("category", pa.string()),
        ("status", pa.int32()),
        ("expected", pa.int8()),
        ("latency_ms", pa.float64()),
        ("n", pa.int64()),
    ]
)


def write_buckets(sources: Sequence[Path], path: Path) -> pa.Table:
    """Every histogram of the files `sources` (HIST_SCHEMA) as buckets in the Parquet file
    `path`: each bucket's value and count under its histogram's key, one source file at a time
    (Python's memory stays flat). Every worker's and flush's buckets together are the merged
    histogram: adding histograms adds their bucket counts. Returns the histograms' other
    columns (count, max_ms, Server-Timing sums), one row a histogram."""
    keys = ["ts", "endpoint", "category", "status", "expected"]
    records = []
    with pq.ParquetWriter(path, BUCKETS) as writer:
        for source in sources:
            table = pq.read_table(source)
            records.append(table.drop_columns(["hdr"]))
            which, values, counts = [], [], []
            for i, encoded in enumerate(table.column("hdr").to_pylist()):
                v, c = buckets(encoded)
                which.append(np.full(len(v), i, dtype=np.int64))
                values.append(v)
                counts.append(c)
            if not which:
                continue
            keyed = table.select(keys).take(pa.array(np.concatenate(which)))
            keyed = keyed.append_column("latency_ms", pa.array(np.concatenate(values)))
            writer.write_table(keyed.append_column("n", pa.array(np.concatenate(counts))))
    return pa.concat_tables(records)

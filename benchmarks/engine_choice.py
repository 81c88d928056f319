"""Which engine computes exact order statistics of tens of millions of rows out of core?

Writes `--rows` synthetic samples (six endpoints, log-normal latencies) as Parquet files of a
million rows, then asks each engine, in a fresh process under `/usr/bin/time -v`, for the
same figures: per endpoint, after a time cut, the count, the maximum and the exact p50, p95,
p99 and p99.9. Wall time and peak resident memory per engine; an engine that is not installed
(polars is not a dependency of the suite) is skipped.

    flock /tmp/velro-load.lock python -m benchmarks.engine_choice --rows 30000000
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ENGINES = ("duckdb", "polars", "pyarrow", "pandas")
START = 1.7e9
CUT = START + 60
QS = [0.5, 0.95, 0.99, 0.999]

PROBE = """
import sys, time
engine, src, cut, qs = sys.argv[1], sys.argv[2], float(sys.argv[3]), [0.5, 0.95, 0.99, 0.999]
t = time.time()
if engine == "duckdb":
    import duckdb
    con = duckdb.connect()
    con.execute("SET memory_limit = '1GB'")
    r = con.execute(
        f"SELECT endpoint, count(*), max(latency_ms), quantile_disc(latency_ms, {qs}) "
        f"FROM read_parquet('{src}/*.parquet') WHERE ts >= {cut} GROUP BY endpoint"
    ).fetchall()
elif engine == "polars":
    import polars as pl
    lat = pl.col("latency_ms")
    r = (
        pl.scan_parquet(f"{src}/*.parquet").filter(pl.col("ts") >= cut).group_by("endpoint")
        .agg([pl.len(), lat.max()] + [lat.quantile(q, interpolation="higher").alias(str(q))
                                       for q in qs])
        .collect(engine="streaming").rows()
    )
elif engine == "pyarrow":
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    tab = ds.dataset(src).to_table(columns=["endpoint", "latency_ms"],
                                   filter=ds.field("ts") >= cut)
    r = []
    for e in pc.unique(tab["endpoint"]).to_pylist():
        lat = tab.filter(pc.equal(tab["endpoint"], e))["latency_ms"]
        r.append((e, len(lat), pc.max(lat).as_py(),
                  pc.quantile(lat, q=qs, interpolation="higher").to_pylist()))
elif engine == "pandas":
    import pandas as pd
    df = pd.read_parquet(src, columns=["ts", "endpoint", "latency_ms"])
    df = df[df.ts >= cut]
    g = df.groupby("endpoint", observed=True)["latency_ms"]
    r = [g.size(), g.max(), g.quantile(qs, interpolation="higher")]
print(f"{time.time() - t:.2f}")
"""


def write_rows(folder: Path, rows: int) -> None:
    rng = np.random.default_rng(1)
    names = pa.array([f"GET /endpoint/{i}" for i in range(6)])
    chunk = 1_000_000
    for i in range(0, rows, chunk):
        m = min(chunk, rows - i)
        which = pa.array(rng.integers(0, 6, m).astype(np.int32))
        table = pa.table(
            {
                "ts": np.sort(START + rng.uniform(0, 3600, m)),
                "endpoint": pa.DictionaryArray.from_arrays(which, names).cast(pa.string()),
                "latency_ms": np.exp(rng.standard_normal(m) * 0.5) * 4,
            }
        )
        pq.write_table(table, folder / f"part-{i // chunk:05d}.parquet")


def measure(engine: str, folder: Path) -> tuple[float, float] | None:
    done = subprocess.run(  # noqa: S603 - this interpreter
        ["/usr/bin/time", "-v", sys.executable, "-c", PROBE, engine, str(folder), str(CUT)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        if "ModuleNotFoundError" in done.stderr:
            return None
        raise RuntimeError(f"{engine}: {done.stderr[-2000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if rss is None:
        raise RuntimeError(f"{engine}: no peak memory from /usr/bin/time")
    return float(done.stdout.strip().splitlines()[-1]), int(rss.group(1)) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=30e6)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="velro-engines-") as tmp:
        folder = Path(tmp)
        write_rows(folder, int(args.rows))
        print(f"| engine ({int(args.rows):,} rows) | query (s) | peak RSS (MB) |")
        print("| --- | ---: | ---: |")
        for engine in ENGINES:
            result = measure(engine, folder)
            if result is None:
                print(f"| {engine} | not installed | |")
            else:
                print(f"| {engine} | {result[0]:.2f} | {result[1]:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Delta storage costs, ratios printed in one run.

1. Ingest of a month of 1m klines x N symbols (daily archive files, fixture builder, file://):
   the bare floor (unzip + pyarrow.csv.read_csv), lake.ingest end to end (Delta), and the silver
   write alone: the same merged month tables written as Delta commits (one predicate overwrite
   per symbol + catalog upsert) vs plain `pyarrow.parquet.write_table` per partition.
   Target: Delta write <= 1.10x plain Parquet.
2. A 100-symbol x 3-month 1m lake generated straight into Delta: one symbol, one week through
   `Table.read` vs reading the whole table and filtering in pandas (files opened, counted by the
   kernel with inotify, and seconds; target >= 20x), and `partition_stats()` (target 0 files).
3. A table with 2,000 commits: open + partition_stats() with checkpoints every 100 commits vs
   the same log without checkpoints.

Usage: python benchmarks/bench_delta.py [--symbols 10] [--days 30] [--big-symbols 100]
       [--commits 2000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cryptolake as cl  # noqa: E402
from cryptolake import config, schema  # noqa: E402
from cryptolake.layers import catalog, silver  # noqa: E402
from cryptolake.layout import parse_archive_key  # noqa: E402
from cryptolake.sources.parse import parse_file  # noqa: E402
from cryptolake.testing.archive import ArchiveBuilder  # noqa: E402
from cryptolake.testing.fsopen import OpenCounter  # noqa: E402
from _timing import timed  # noqa: E402  (benchmarks/_timing.py)

SCH = schema.silver_schema("um", "klines")
MIN_US = 60_000_000


def interleaved(fns, repeat: int) -> list[float]:
    """Median seconds of each function, run in turns (a busy machine drifts between blocks)."""
    times = [[] for _ in fns]
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def floor_one(path: Path) -> int:
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as z:
        data = z.read(z.namelist()[0])
    return pacsv.read_csv(io.BytesIO(data)).num_rows


# ---------------------------------------------------------------- 1. ingest
def bench_ingest(tmp: Path, n_symbols: int, days: int, repeat: int) -> None:
    root = tmp / "archive"
    b = ArchiveBuilder(root.as_uri())
    syms = [f"S{i:02d}USDT" for i in range(n_symbols)]
    for s in syms:
        for d in range(1, days + 1):
            b.klines("um", s, "1m", f"2024-04-{d:02d}")
    files = sorted(root.rglob("*.zip"))
    workers = config.max_workers()
    with ThreadPoolExecutor(workers) as pool:
        t_floor, _ = timed(lambda: sum(pool.map(floor_one, files)), repeat)
        rows = sum(pool.map(floor_one, files))

    def ingest():
        lake = cl.Lake(tempfile.mkdtemp(dir=tmp), archive=cl.BinanceArchive(root.as_uri()))
        r = lake.ingest("um", "klines", interval="1m", start="2024-04-01", end=f"2024-04-{days:02d}",
                        progress=False, top_up=False)
        assert r.ok and r.rows["um_klines_1m"] == rows, r
    t_ingest, _ = timed(ingest, repeat)

    # the silver write alone, on the same merged tables
    by_sym = {s: [] for s in syms}
    for p in files:
        k = parse_archive_key(p.relative_to(root).as_posix())
        by_sym[k.symbol].append(parse_file(p.read_bytes(), k))
    merged = {s: silver.merge(ts, "open_time", SCH) for s, ts in by_sym.items()}

    def plain():
        d = Path(tempfile.mkdtemp(dir=tmp))
        for s, t in merged.items():
            part = d / f"symbol={s}" / "month=2024-04"
            part.mkdir(parents=True)
            pq.write_table(t, part / "part-0.parquet", compression="snappy")

    def delta():
        lake = cl.Lake(tempfile.mkdtemp(dir=tmp))
        for s, t in merged.items():
            silver.replace_partitions(lake.storage, "silver", "um_klines_1m", s, SCH, "open_time", "1m",
                                      lambda t=t: {"2024-04": t})

    def delta_data_only():
        lake = cl.Lake(tempfile.mkdtemp(dir=tmp))
        from deltalake import write_deltalake
        silver.ensure_table(lake.storage, "silver", "um_klines_1m", SCH)
        d = lake.storage.open_table("silver/um_klines_1m")
        for s, t in merged.items():
            data = t.append_column("symbol", pa.array([s] * t.num_rows)).append_column(
                "month", pa.array(["2024-04"] * t.num_rows))
            write_deltalake(d, data, mode="overwrite", predicate=f"symbol = '{s}' AND month = '2024-04'",
                            partition_by=["symbol", "month"])
    t_plain, t_data, t_delta = interleaved([plain, delta_data_only, delta], max(repeat, 5))
    print(f"\n## 1. Ingest: {len(files)} daily files, {rows:,} rows, {n_symbols} symbols x {days} days "
          f"(1m), {workers} threads, median of {repeat} (silver writes: {max(repeat, 5)}, interleaved)\n")
    print("| step | seconds | rows/s | ratio |")
    print("|---|---|---|---|")
    print(f"| floor: unzip + read_csv ({workers} threads) | {t_floor:.3f} | {rows / t_floor:,.0f} | 1.00x |")
    print(f"| lake.ingest end to end (Delta) | {t_ingest:.3f} | {rows / t_ingest:,.0f} | "
          f"{t_ingest / t_floor:.2f}x floor |")
    print(f"| silver write: plain pyarrow.parquet, 1 file per partition | {t_plain:.3f} | "
          f"{rows / t_plain:,.0f} | 1.00x |")
    print(f"| silver write: Delta data commits only (write_deltalake per symbol) | {t_data:.3f} | "
          f"{rows / t_data:,.0f} | {t_data / t_plain:.2f}x parquet |")
    print(f"| silver write: Delta commit + catalog upsert per symbol | {t_delta:.3f} | "
          f"{rows / t_delta:,.0f} | {t_delta / t_plain:.2f}x parquet |")


# ---------------------------------------------------------------- 2. the big lake
def month_table(i: int, month: str, rng) -> pa.Table:
    lo = pd.Timestamp(month + "-01", tz="UTC").value // 1000
    hi = (pd.Timestamp(month + "-01", tz="UTC") + pd.offsets.MonthBegin(1)).value // 1000
    t = np.arange(lo, hi, MIN_US, dtype=np.int64)
    n = len(t)
    close = 100 + i + np.cumsum(rng.normal(0, 0.1, n))
    ts = pa.array(t.astype("datetime64[us]")).cast(schema.TS)
    cols = {"open_time": ts, "open": close, "high": close + 0.05, "low": close - 0.05, "close": close,
            "volume": rng.uniform(1, 10, n), "close_time": pa.array((t + MIN_US - 1000).astype("datetime64[us]")).cast(schema.TS),
            "quote_volume": rng.uniform(100, 1000, n), "trades": np.full(n, 10, np.int64),
            "taker_buy_volume": rng.uniform(0, 1, n), "taker_buy_quote_volume": rng.uniform(0, 100, n),
            "source": pa.array(["archive_monthly"] * n)}
    return pa.table(cols, schema=SCH)


def bench_big(tmp: Path, n_symbols: int, repeat: int) -> None:
    months = ["2024-01", "2024-02", "2024-03"]
    root = tmp / "big"
    lake = cl.Lake(str(root))
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for lo in range(0, n_symbols, 10):                     # 10 symbols per commit
        parts = {(f"SYM{i:03d}", m): month_table(i, m, rng) for i in range(lo, min(lo + 10, n_symbols))
                 for m in months}
        silver.write_partitions(lake.storage, "silver", "um_klines_1m", SCH, "open_time", "1m", parts)
    gen = time.perf_counter() - t0
    t = lake.silver.um_klines_1m
    sym, start, end = "SYM042", "2024-02-12", "2024-02-18"

    def narrow():
        return t.read(sym, start=start, end=end)

    def wide():
        df = t.dataset().to_table().to_pandas()
        m = (df["symbol"] == sym) & (df["open_time"] >= pd.Timestamp(start, tz="UTC")) & \
            (df["open_time"] < pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1))
        return df[m]

    silver_dir = root / "silver"
    with OpenCounter(silver_dir) as c_n:
        a = narrow()
    with OpenCounter(silver_dir) as c_w:
        w = wide()
    assert len(a) == len(w) == 7 * 1440, (len(a), len(w))
    t_n, _ = timed(narrow, repeat)
    t_w, _ = timed(wide, max(1, repeat // 2))
    with OpenCounter(silver_dir) as c_s:
        stats = t.partition_stats()
    t_s, _ = timed(t.partition_stats, repeat)
    assert int(stats["rows"].sum()) == sum(len(month_table(0, m, rng)) for m in months) * n_symbols
    n_files = len(list(silver_dir.rglob("*.parquet")))
    print(f"\n## 2. {n_symbols} symbols x 3 months of 1m bars ({int(stats['rows'].sum()):,} rows, "
          f"{n_files} data files; generated in {gen:.1f} s), median of {repeat}\n")
    print("| read | seconds | data files opened | speed-up |")
    print("|---|---|---|---|")
    print(f"| whole table, filter in pandas | {t_w:.3f} | {len(set(c_w.opened))} | 1.0x |")
    print(f"| t.read('{sym}', '{start}', '{end}') | {t_n:.4f} | {len(set(c_n.opened))} "
          f"(only {sym}: {all(sym in p for p in c_n.opened)}) | {t_w / t_n:.1f}x |")
    print(f"| t.partition_stats() ({len(stats)} partitions) | {t_s:.4f} | {c_s.count} | — |")


# ---------------------------------------------------------------- 3. a long log
def bench_log(tmp: Path, commits: int, repeat: int) -> None:
    from deltalake import write_deltalake
    rng = np.random.default_rng(1)
    one = month_table(0, "2024-01", rng).slice(0, 60)
    out = {}
    for label, interval in (("checkpoint every 100 commits", "100"), ("no checkpoints", "1000000")):
        lake = cl.Lake(str(tmp / f"log-{interval}"))
        from deltalake import DeltaTable
        DeltaTable.create(lake.storage.table_uri("silver/um_klines_1m"), silver.data_schema(SCH),
                          partition_by=["symbol", "month"], configuration={"delta.checkpointInterval": interval})
        uri = lake.storage.table_uri("silver/um_klines_1m")
        d = DeltaTable(uri)
        data = one.append_column("symbol", pa.array(["BTCUSDT"] * 60)).append_column("month", pa.array(["2024-01"] * 60))
        t0 = time.perf_counter()
        for _ in range(commits):
            write_deltalake(d, data, mode="overwrite", predicate="symbol = 'BTCUSDT' AND month = '2024-01'")
        made = time.perf_counter() - t0
        catalog.upsert(lake.storage, [catalog.partition_row("silver", "um_klines_1m", "BTCUSDT", "2024-01",
                                                            one, "open_time", "1m", d.version())])

        def open_and_stats():
            return cl.Lake(str(tmp / f"log-{interval}")).silver.um_klines_1m.partition_stats()
        t, stats = timed(open_and_stats, repeat)
        assert stats["rows"].tolist() == [60]
        out[label] = (t, made, len(list((tmp / f"log-{interval}" / "silver/um_klines_1m/_delta_log").glob("*.checkpoint.parquet"))))
    print(f"\n## 3. A table with {commits:,} commits: open + partition_stats(), median of {repeat}\n")
    print("| log | seconds | checkpoints | writing the commits took |")
    print("|---|---|---|---|")
    base = out["no checkpoints"][0]
    for label, (t, made, cps) in out.items():
        print(f"| {label} | {t:.3f} ({base / t:.1f}x faster than none) | {cps} | {made:.1f} s |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--big-symbols", type=int, default=100)
    ap.add_argument("--commits", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["ingest", "big", "log"], default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.only in (None, "ingest"):
            bench_ingest(tmp, args.symbols, args.days, args.repeat)
        if args.only in (None, "big"):
            bench_big(tmp, args.big_symbols, args.repeat)
        if args.only in (None, "log"):
            bench_log(tmp, args.commits, args.repeat)


if __name__ == "__main__":
    main()

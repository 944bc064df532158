"""Parsing big archive files: peak memory of the streaming parser, and speed against the floor.

1. Peak RSS. Writes one um aggTrades day of ``--rows`` rows (default 20,000,000; one row in
   1,000 doubled, like the archive's duplicates) straight into a deflated zip, then runs
   ``iter_parse`` over it in a fresh child process per batch size and prints the zip size,
   the CSV size, the child's peak RSS (and its RSS after imports, so the parse's own share is
   visible), rows/s and the duplicates it dropped. The same for a file a tenth the size: the
   peak should follow the batch size, not the file size.
2. Speed. For one day of ``--day-rows`` aggTrades rows (default 3,000,000) times
       floor        zipfile read + pyarrow.csv.read_csv (type inference, nothing else)
       parse_file   zip bytes -> deduplicated, sorted silver table
       iter_parse   the same through the streaming path
   and prints each as a ratio of the floor's speed (target >= 0.8).

Usage: python benchmarks/bench_parse.py [--rows 20000000] [--day-rows 3000000] [--batch-rows 250000,1000000]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cryptolake.layout import ArchiveKey  # noqa: E402
from _timing import timed  # noqa: E402  (benchmarks/_timing.py)

HEADER = ["agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
          "transact_time", "is_buyer_maker"]
DAY_MS = 86_400_000


class _Counting(io.RawIOBase):
    """A write-only stream that counts the bytes passed through to ``inner``."""

    def __init__(self, inner):
        self.inner, self.n = inner, 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.n += len(b)
        return self.inner.write(b)


def write_agg_trades_zip(path: Path, rows: int, day: str = "2024-03-01", chunk: int = 1_000_000,
                         seed: int = 0) -> tuple[ArchiveKey, int]:
    """A realistic um aggTrades day (header, lower-case booleans, ms times) of ``rows`` rows,
    one in 1,000 doubled; returns (key, CSV bytes)."""
    key = ArchiveKey("um", "daily", "aggTrades", "BTCUSDT", None, day)
    rng = np.random.default_rng(seed)
    t0 = int(np.datetime64(day, "ms").astype(np.int64))
    first_id = 2_000_000_000
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, \
            zf.open(key.filename[:-4] + ".csv", "w", force_zip64=True) as member:
        out = _Counting(member)
        out.write((",".join(HEADER) + "\n").encode())
        price = 6_000_000
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ids = first_id + start + np.arange(n, dtype=np.int64)
            steps = rng.choice(np.array([-1, 0, 0, 0, 1]), size=n)
            px = price + np.cumsum(steps)
            price = int(px[-1])
            t = t0 + (ids - first_id) * DAY_MS // rows
            per = rng.geometric(0.5, n).astype(np.int64)
            ftid = 5_000_000_000 + start * 2 + np.r_[0, np.cumsum(per)[:-1]]
            tbl = pa.table({
                "agg_trade_id": ids, "price": px / 100, "quantity": rng.integers(1, 5000, n) / 1000,
                "first_trade_id": ftid, "last_trade_id": ftid + per - 1, "transact_time": t,
                "is_buyer_maker": rng.uniform(0, 1, n) < 0.5})
            dup = np.flatnonzero(ids % 1000 == 7)
            order = np.sort(np.concatenate([np.arange(n), dup]), kind="stable")
            pacsv.write_csv(tbl.take(order), out, pacsv.WriteOptions(include_header=False))
    return key, out.n


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(path: str, key_json: str, batch_rows: int) -> None:
    """Runs in a fresh process: stream the file, print JSON with RSS and counts."""
    from cryptolake.sources.stream import iter_parse
    import pyarrow.compute  # noqa: F401  (imported before the baseline)
    key = ArchiveKey(**json.loads(key_json))
    base = _rss_mb()
    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        s = iter_parse(fh, key, batch_rows=batch_rows)
        rows = sum(t.num_rows for t in s)
    dt_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "rows_read": s.rows_read, "duplicates": s.duplicates,
                      "out_of_order": s.out_of_order, "batches": s.batches, "seconds": dt_s,
                      "base_mb": base, "peak_mb": peak}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--day-rows", type=int, default=3_000_000)
    ap.add_argument("--batch-rows", default="250000,1000000",
                    help="comma-separated batch sizes; one child process each")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs=3, metavar=("PATH", "KEY", "BATCH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    from cryptolake.sources.parse import parse_file
    from cryptolake.sources.stream import iter_parse

    with tempfile.TemporaryDirectory() as tmp:
        # ---- 1. peak memory: the big file, and a file a tenth its size (same batch sizes)
        for rows in (args.rows // 10, args.rows):
            path = Path(tmp) / f"agg-{rows}.zip"
            t0 = time.perf_counter()
            key, csv_bytes = write_agg_trades_zip(path, rows)
            zip_mb, csv_mb = path.stat().st_size / 2**20, csv_bytes / 2**20
            print(f"{rows:,} rows ({key.filename}, generated in {time.perf_counter() - t0:.0f}s): "
                  f"zip {zip_mb:,.0f} MiB, CSV {csv_mb:,.0f} MiB")
            kj = json.dumps({"market": key.market, "cadence": key.cadence, "data_type": key.data_type,
                             "symbol": key.symbol, "interval": key.interval, "period": key.period})
            for batch in [int(b) for b in args.batch_rows.split(",")]:
                res = subprocess.run([sys.executable, __file__, "--child", str(path), kj, str(batch)],
                                     capture_output=True, text=True, check=True,
                                     env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
                r = json.loads(res.stdout.strip().splitlines()[-1])
                share = r["peak_mb"] - r["base_mb"]
                print(f"  iter_parse batch_rows={batch:,}: {r['rows_read']:,} rows read, {r['rows']:,} kept, "
                      f"{r['duplicates']:,} duplicates, {r['batches']} batches; peak RSS {r['peak_mb']:,.0f} MiB "
                      f"(after imports {r['base_mb']:,.0f} MiB, parse's share {share:,.0f} MiB = "
                      f"{share / csv_mb:.3f} x CSV size); {r['rows_read'] / r['seconds']:,.0f} rows/s "
                      f"({r['seconds']:.1f}s)")
            path.unlink()

        # ---- 2. one day of a few million rows: parse vs floor
        day = Path(tmp) / "day.zip"
        dkey, dcsv = write_agg_trades_zip(day, args.day_rows, seed=1)
        data = day.read_bytes()

        def floor():
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                raw = z.read(z.namelist()[0])
            return pacsv.read_csv(io.BytesIO(raw)).num_rows

        def streamed():
            return sum(t.num_rows for t in iter_parse(data, dkey))

        tf, nf = timed(floor, args.repeat)
        tp, tbl = timed(lambda: parse_file(data, dkey), args.repeat)
        ts, ns = timed(streamed, args.repeat)
        print(f"one day, {args.day_rows:,} aggTrades rows (zip {len(data) / 2**20:.0f} MiB, "
              f"CSV {dcsv / 2**20:.0f} MiB), median of {args.repeat}:")
        print(f"  floor      unzip + read_csv      {tf:7.3f}s  {nf / tf:13,.0f} rows/s")
        print(f"  parse_file zip -> silver table   {tp:7.3f}s  {tbl.num_rows / tp:13,.0f} rows/s  "
              f"ratio {tf / tp:.2f} of floor speed")
        print(f"  iter_parse zip -> silver batches {ts:7.3f}s  {ns / ts:13,.0f} rows/s  "
              f"ratio {tf / ts:.2f} of floor speed")


if __name__ == "__main__":
    main()

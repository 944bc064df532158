"""Ingest throughput against the bare floor, measured in the same run.

Generates a month of 1m klines for 10 symbols as daily archive files (300 zips, 432,000 rows)
with the fixture builder into a temporary file:// mirror, then times:

  floor (1 thread)   unzip + pyarrow.csv.read_csv of every file, nothing else
  floor (N threads)  the same spread over the ingest's thread count
  ingest             lake.ingest(...) end to end: listing, .CHECKSUM verification, bronze
                     copy + manifest, parse, merge, silver Parquet, gap report

and prints the ratio ingest / floor. Usage: python benchmarks/bench_ingest.py [--symbols 10] [--days 30]
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cryptolake as cl  # noqa: E402
from cryptolake import config  # noqa: E402
from cryptolake.testing.archive import ArchiveBuilder  # noqa: E402
from _timing import timed  # noqa: E402  (benchmarks/_timing.py)

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT",
           "AVAXUSDT", "LINKUSDT", "DOTUSDT", "LTCUSDT", "TRXUSDT"]


def floor_one(path: Path) -> int:
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as z:
        data = z.read(z.namelist()[0])
    return pacsv.read_csv(io.BytesIO(data)).num_rows   # these futures files carry a header row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "archive"
        b = ArchiveBuilder(root.as_uri())
        for sym in SYMBOLS[: args.symbols]:
            for d in range(1, args.days + 1):
                b.klines("um", sym, "1m", f"2024-04-{d:02d}")
        files = sorted(root.rglob("*.zip"))
        nbytes = sum(p.stat().st_size for p in files)
        workers = config.max_workers()

        f1, rows = timed(lambda: sum(map(floor_one, files)), args.repeat)
        with ThreadPoolExecutor(workers) as pool:
            fn, _ = timed(lambda: sum(pool.map(floor_one, files)), args.repeat)

        def ingest():
            lake = cl.Lake(tempfile.mkdtemp(dir=tmp), archive=cl.BinanceArchive(root.as_uri()))
            r = lake.ingest("um", "klines", interval="1m", start="2024-04-01",
                            end=f"2024-04-{args.days:02d}", progress=False, top_up=False)
            assert r.ok and r.rows["um_klines_1m"] == rows, r
            return r
        ti, _ = timed(ingest, args.repeat)

    print(f"{len(files)} daily files, {rows:,} rows, {nbytes / 1e6:.1f} MB zipped; "
          f"{workers} threads; median of {args.repeat}")
    print("| step | seconds | rows/s | ingest ÷ step |")
    print("|---|---|---|---|")
    for name, t in [("floor: unzip + read_csv, 1 thread", f1),
                    (f"floor: unzip + read_csv, {workers} threads", fn),
                    ("lake.ingest end to end", ti)]:
        print(f"| {name} | {t:.3f} | {rows / t:,.0f} | {ti / t:.2f}x |")


if __name__ == "__main__":
    main()

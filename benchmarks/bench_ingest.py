"""Ingest throughput against the bare floor, and peak memory of ingesting a big trades file.

Speed (default mode), two cases, each timed in the same run against its floor:

  klines   a month of 1m klines for 10 symbols as daily archive files (300 zips, 432,000
           rows, written by the fixture builder into a temporary file:// mirror)
  trades   one um aggTrades day of ``--day-rows`` rows (default 3,000,000)

  floor (1 thread)   unzip + pyarrow.csv.read_csv of every file, nothing else
  floor (N threads)  the same spread over `config.max_workers()` threads (4 per core, at least
                     8: its best here; the ingest itself runs one thread per core on a local mirror)
  ingest             lake.ingest(...) end to end: listing, .CHECKSUM verification, bronze
                     copy + manifest, parse, merge, silver Parquet (Delta), catalog, gap report

and prints ingest ÷ floor (times) and floor ÷ ingest (the share of the floor's speed; target
>= 0.8). Rounds are interleaved (floor, ingest, floor, ingest, ...) and medians taken.

Memory (``--memory``): writes um aggTrades days of ``--trades-rows`` rows (default 20,000,000)
and a quarter of that into a mirror, runs ``lake.ingest`` on each in a CHILD process and
prints the child's peak RSS next to the zip and CSV sizes, plus the peak RSS of a child that
only imports cryptolake (the baseline). The peak should follow $CRYPTOLAKE_BATCH_ROWS, not
the file size.

Wall seconds and CPU seconds (the process, all threads) are both printed: on a shared
machine the CPU ratio is the steadier one.

Usage: python benchmarks/bench_ingest.py [--symbols 10] [--days 30] [--day-rows 3000000] [--repeat 3]
                                         [--klines-only]
       python benchmarks/bench_ingest.py --memory [--trades-rows 20000000]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.csv as pacsv

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import cryptolake as cl  # noqa: E402
from cryptolake import config  # noqa: E402
from cryptolake.testing.archive import ArchiveBuilder  # noqa: E402
from bench_parse import write_agg_trades_zip  # noqa: E402  (benchmarks/bench_parse.py)

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT",
           "AVAXUSDT", "LINKUSDT", "DOTUSDT", "LTCUSDT", "TRXUSDT"]
TODAY = "2026-11-26"


def floor_one(path: Path) -> int:
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as z:
        data = z.read(z.namelist()[0])
    return pacsv.read_csv(io.BytesIO(data)).num_rows   # these futures files carry a header row


def trades_day(root: Path, rows: int, day: str = "2024-03-01", seed: int = 1) -> tuple[Path, int]:
    """One um aggTrades day of `rows` rows (one in 1,000 doubled) and its .CHECKSUM in the
    mirror at `root`; returns (zip path, CSV bytes)."""
    rel = f"data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-{day}.zip"
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    _, csv_bytes = write_agg_trades_zip(path, rows, day=day, seed=seed)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    path.with_name(path.name + ".CHECKSUM").write_text(f"{h.hexdigest()}  {path.name}\n")
    return path, csv_bytes


CPU: dict = {}     # median CPU seconds (all threads of this process) of the last `interleaved`


def interleaved(fns: dict, repeat: int) -> dict:
    """Median seconds of each callable, timed in interleaved rounds (median CPU seconds of
    the process, all threads, in `CPU`: steadier than wall time on a shared machine)."""
    times: dict = {k: [] for k in fns}
    cpu: dict = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    CPU.clear()
    CPU.update({k: statistics.median(v) for k, v in cpu.items()})
    return {k: statistics.median(v) for k, v in times.items()}


def _table(title: str, rows: int, t: dict, workers: int) -> None:
    ti, ci = t["ingest"], CPU["ingest"]
    print(title)
    print("| step | seconds | rows/s | ingest ÷ step | step ÷ ingest (share of its speed) "
          "| CPU s | step ÷ ingest, CPU |")
    print("|---|---|---|---|---|---|---|")
    for name, key in [("floor: unzip + read_csv, 1 thread", "floor1"),
                      (f"floor: unzip + read_csv, {workers} threads", "floorN"),
                      ("lake.ingest end to end", "ingest")]:
        print(f"| {name} | {t[key]:.3f} | {rows / t[key]:,.0f} | {ti / t[key]:.2f}x | {t[key] / ti:.2f} "
              f"| {CPU[key]:.3f} | {CPU[key] / ci:.2f} |")


def speed(args) -> None:
    workers = config.max_workers()
    with tempfile.TemporaryDirectory() as tmp:
        # ---- a month of 1m klines x symbols
        root = Path(tmp) / "archive"
        b = ArchiveBuilder(root.as_uri())
        for sym in SYMBOLS[: args.symbols]:
            for d in range(1, args.days + 1):
                b.klines("um", sym, "1m", f"2024-04-{d:02d}")
        files = sorted(root.rglob("*.zip"))
        nbytes = sum(p.stat().st_size for p in files)
        rows = sum(map(floor_one, files))
        pool = ThreadPoolExecutor(workers)

        def ingest_klines():
            lake = cl.Lake(tempfile.mkdtemp(dir=tmp), archive=cl.BinanceArchive(root.as_uri()))
            r = lake.ingest("um", "klines", interval="1m", start="2024-04-01",
                            end=f"2024-04-{args.days:02d}", progress=False, top_up=False, today=TODAY)
            assert r.ok and r.rows["um_klines_1m"] == rows, r

        t = interleaved({"floor1": lambda: sum(map(floor_one, files)),
                         "floorN": lambda: sum(pool.map(floor_one, files)),
                         "ingest": ingest_klines}, args.repeat)
        _table(f"klines: {len(files)} daily files, {rows:,} rows, {nbytes / 1e6:.1f} MB zipped; "
               f"floor on {workers} threads, ingest on {config.max_workers(local=True)} (one per core: a "
               f"local mirror into a local lake); median of {args.repeat} interleaved rounds", rows, t, workers)
        if args.klines_only:
            pool.shutdown()
            return

        # ---- one aggTrades day of a few million rows
        troot = Path(tmp) / "trades-archive"
        path, csv_bytes = trades_day(troot, args.day_rows)
        kept = None

        def ingest_trades():
            nonlocal kept
            lake = cl.Lake(tempfile.mkdtemp(dir=tmp), archive=cl.BinanceArchive(troot.as_uri()))
            r = lake.ingest("um", "aggTrades", "BTCUSDT", start="2024-03-01", end="2024-03-01",
                            progress=False, top_up=False, today=TODAY)
            assert r.ok, r.errors
            kept = r.rows["um_agg_trades"]

        t = interleaved({"floor1": lambda: floor_one(path), "floorN": lambda: floor_one(path),
                         "ingest": ingest_trades}, args.repeat)
        print()
        _table(f"aggTrades: one day, {args.day_rows:,} rows ({kept:,} after dedup), zip "
               f"{path.stat().st_size / 2**20:.0f} MiB, CSV {csv_bytes / 2**20:.0f} MiB; batch rows "
               f"{config.batch_rows():,}; median of {args.repeat} interleaved rounds "
               f"(one file: the N-thread floor is the 1-thread one)", args.day_rows, t, workers)
        pool.shutdown()


# ------------------------------------------------------------------ memory
def child_ingest(archive_dir: str, lake_dir: str) -> None:
    """Runs in a fresh process: ingest the day, print JSON with peak RSS."""
    t0 = time.perf_counter()
    lake = cl.Lake(lake_dir, archive=cl.BinanceArchive(Path(archive_dir).as_uri()))
    r = lake.ingest("um", "aggTrades", "BTCUSDT", start="2024-03-01", end="2024-03-01",
                    progress=False, top_up=False, today=TODAY)
    assert r.ok, r.errors
    print(json.dumps({"rows": r.rows["um_agg_trades"], "seconds": time.perf_counter() - t0,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def child_import() -> None:
    import pyarrow.compute  # noqa: F401
    import deltalake  # noqa: F401
    print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _run_child(*argv) -> dict:
    res = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(HERE.parent)})
    if res.returncode:
        raise SystemExit(f"child {argv} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def memory(args) -> None:
    base = _run_child("--child-import")
    print(f"baseline: a child that imports cryptolake (+ deltalake, pyarrow.compute): "
          f"peak RSS {base['peak_mb']:,.0f} MiB; batch rows {config.batch_rows():,}")
    print("| aggTrades rows | zip MiB | CSV MiB | rows kept | ingest s | peak RSS MiB | "
          "above baseline MiB | above baseline ÷ CSV |")
    print("|---|---|---|---|---|---|---|---|")
    for rows in (args.trades_rows // 4, args.trades_rows):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "archive"
            path, csv_bytes = trades_day(root, rows)
            zip_mb, csv_mb = path.stat().st_size / 2**20, csv_bytes / 2**20
            r = _run_child("--child-ingest", str(root), str(Path(tmp) / "lake"))
            above = r["peak_mb"] - base["peak_mb"]
            print(f"| {rows:,} | {zip_mb:,.0f} | {csv_mb:,.0f} | {r['rows']:,} | {r['seconds']:.1f} | "
                  f"{r['peak_mb']:,.0f} | {above:,.0f} | {above / csv_mb:.3f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--day-rows", type=int, default=3_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--klines-only", action="store_true", help="skip the aggTrades case")
    ap.add_argument("--memory", action="store_true", help="peak RSS of ingesting big trades files")
    ap.add_argument("--trades-rows", type=int, default=20_000_000)
    ap.add_argument("--child-ingest", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--child-import", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_ingest:
        child_ingest(*args.child_ingest)
    elif args.child_import:
        child_import()
    elif args.memory:
        memory(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()

"""Gold benchmarks (ratios printed, nothing asserted):

1. `build_gold("bars", rule="1h", phases="all")` for N symbols x D days of 1m vs pandas
   `resample("1h", offset=...)` in a loop over the 60 phases (target >= 20x). Both the
   compute alone (kinds.bars vs pandas) and the whole build (read silver, compute, commit
   Delta) are timed.
2. Dollar bars over R trades (`ops.info_bars.bars`) vs a pandas/numpy cumsum-and-split
   baseline (bar id = floor(cumsum(price*qty) / size), then groupby).
3. `Table.to_dask().compute()` of a 100-symbol table on a 2-worker LocalCluster vs
   `Table.read_arrow().to_pandas()` in one process (the same rows; report only).

    python benchmarks/bench_gold.py                 # 10 symbols x 365 days, 20M trades
    python benchmarks/bench_gold.py --quick         # 2 symbols x 30 days, 2M trades
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cryptolake as cl  # noqa: E402
from cryptolake import schema  # noqa: E402
from cryptolake.gold import kinds  # noqa: E402
from cryptolake.layers import silver  # noqa: E402
from cryptolake.ops.info_bars import bars as info_bars  # noqa: E402

AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum",
       "quote_volume": "sum", "trades": "sum", "taker_buy_volume": "sum", "taker_buy_quote_volume": "sum",
       "close_time": "last"}


def minute_frame(days: int, seed: int) -> pd.DataFrame:
    t = pd.date_range("2023-01-01", periods=days * 1440, freq="1min", tz="UTC").as_unit("us")
    rng = np.random.default_rng(seed)
    c = 100 + np.cumsum(rng.normal(0, 0.1, len(t)))
    o = np.r_[100.0, c[:-1]]
    v = rng.random(len(t))
    return pd.DataFrame({"open": o, "high": np.maximum(o, c) + 0.01, "low": np.minimum(o, c) - 0.01, "close": c,
                         "volume": v, "close_time": t + pd.Timedelta("59.999s"), "quote_volume": v * c,
                         "trades": rng.integers(1, 9, len(t)), "taker_buy_volume": v / 2,
                         "taker_buy_quote_volume": v * c / 2}, index=pd.Index(t, name="open_time"))


def bench_phases(n_sym: int, days: int) -> None:
    frames = [minute_frame(days, i) for i in range(n_sym)]
    phases = kinds.phase_list("all", 3_600_000_000, 60_000_000)
    kinds.bars(frames[0].iloc[:5000], "1h", phases, 60_000_000, False)          # compile
    t0 = time.perf_counter()
    ours = [kinds.bars(f, "1h", phases, 60_000_000, False)[0] for f in frames]
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    for f in frames:
        for k in range(60):
            r = f.resample("1h", offset=pd.Timedelta(minutes=k))
            out = r.agg(AGG)
            n = r["open"].count()
            out = out[n == 60]
    t_pd = time.perf_counter() - t0
    rows = sum(len(f) for f in frames)
    print(f"[1] 1h x 60 phases, {n_sym} symbols x {days} days ({rows:,} 1m rows -> "
          f"{sum(len(o) for o in ours):,} bars)")
    print(f"    compute: gold kinds.bars {t_ours:.2f} s   pandas loop {t_pd:.2f} s   ratio {t_pd / t_ours:.1f}x")
    with tempfile.TemporaryDirectory() as tmp:
        lake = cl.Lake(tmp)
        sch = schema.silver_schema("um", "klines")
        for i, f in enumerate(frames):
            df = f.reset_index()
            df["source"] = "archive_monthly"
            month = df["open_time"].dt.tz_localize(None).dt.to_period("M").astype(str)
            parts = {(f"S{i:02d}USDT", m): pa.Table.from_pandas(df[month == m], schema=sch, preserve_index=False)
                     for m in sorted(set(month))}
            silver.write_partitions(lake.storage, "silver", "um_klines_1m", sch, "open_time", "1m", parts)
        t0 = time.perf_counter()
        lake.build_gold("bars", "um_klines_1m", rule="1h", phases="all", progress=False)
        t_build = time.perf_counter() - t0
    print(f"    whole build_gold (read silver + compute + Delta commits): {t_build:.2f} s   "
          f"vs pandas compute alone: ratio {t_pd / t_build:.1f}x")


def bench_dollar(n_rows: int) -> None:
    rng = np.random.default_rng(0)
    t = pd.DatetimeIndex(np.sort(rng.integers(1.6e15, 1.7e15, n_rows)).astype("datetime64[us]"),
                         name="transact_time").tz_localize("UTC")
    tr = pd.DataFrame({"price": 100 + rng.random(n_rows), "quantity": rng.random(n_rows),
                       "is_buyer_maker": rng.random(n_rows) < 0.5}, index=t)
    info_bars(tr.iloc[:1000], by="dollar", size=1e5)                                  # compile
    t0 = time.perf_counter()
    ours = info_bars(tr, by="dollar", size=1e5)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    dollars = (tr["price"] * tr["quantity"]).to_numpy()
    bar = (np.cumsum(dollars) // 1e5).astype(np.int64)
    g = tr.assign(_bar=bar, _d=dollars).groupby("_bar")
    base = pd.DataFrame({"open": g["price"].first(), "high": g["price"].max(), "low": g["price"].min(),
                         "close": g["price"].last(), "volume": g["quantity"].sum(), "dollars": g["_d"].sum()})
    t_pd = time.perf_counter() - t0
    print(f"[2] dollar bars over {n_rows:,} trades: ops.info_bars {t_ours:.2f} s ({len(ours):,} bars)   "
          f"pandas cumsum-and-split {t_pd:.2f} s ({len(base):,} bars)   ratio {t_pd / t_ours:.1f}x")


def bench_dask() -> None:
    from distributed import Client, LocalCluster
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_delta_catalog import MONTHS, SCH, month_bars
    with tempfile.TemporaryDirectory() as tmp:
        lake = cl.Lake(tmp)
        parts = {(f"SYM{i:03d}", m): month_bars(i, m) for i in range(100) for m in MONTHS}
        silver.write_partitions(lake.storage, "silver", "um_klines_1h", SCH, "open_time", "1h", parts)
        t = lake.silver.um_klines_1h
        t0 = time.perf_counter()
        pdf = t.read_arrow().to_pandas()
        t_pd = time.perf_counter() - t0
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          host="127.0.0.1") as cluster, Client(cluster):
            t.to_dask().compute()                                                     # warm workers
            t0 = time.perf_counter()
            ddf = t.to_dask().compute()
            t_dd = time.perf_counter() - t0
        assert len(ddf) == len(pdf)
        print(f"[3] 100 symbols x 3 months of 1h ({len(pdf):,} rows, {t.to_dask().npartitions} files): "
              f"pandas {t_pd:.2f} s   to_dask on 2 workers {t_dd:.2f} s   ratio {t_pd / t_dd:.2f}x")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["phases", "dollar", "dask"])
    a = ap.parse_args()
    n_sym, days, rows = (2, 30, 2_000_000) if a.quick else (10, 365, 20_000_000)
    if a.only in (None, "phases"):
        bench_phases(n_sym, days)
    if a.only in (None, "dollar"):
        bench_dollar(rows)
    if a.only in (None, "dask"):
        bench_dask()

"""Gap causes: each scenario is built in the archive, ingested, and the cause read back."""
from __future__ import annotations

import datetime as dt

import pandas as pd

import cryptolake as cl
from cryptolake.testing.archive import ArchiveBuilder

TODAY = dt.date(2026, 11, 26)


def ingest(tmp_path, builder, symbol, start, end):
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(builder.url))
    report = lake.ingest("um", "klines", symbol, interval="1m", start=start, end=end,
                         progress=False, today=TODAY)
    return lake, report


def test_each_cause_is_named(tmp_path):
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    b.klines("um", "BTCUSDT", "1m", "2024-03-01", missing=[slice(100, 130)])        # outage
    b.klines("um", "BTCUSDT", "1m", "2024-03-02", missing=[slice(1380, 1440)])      # stops early
    # 2024-03-03 never published                                                    # missing_file
    b.klines("um", "BTCUSDT", "1m", "2024-03-04", missing=[slice(0, 10)])           # starts late
    b.klines("um", "BTCUSDT", "1m", "2024-04-20")                                   # relisted
    lake, report = ingest(tmp_path, b, "BTCUSDT", "2024-03-01", "2024-04-30")
    g = lake.silver.um_klines_1m.gaps()
    day = lambda s: pd.Timestamp(s, tz="UTC")                                       # noqa: E731
    want = [
        (day("2024-03-01 01:40"), day("2024-03-01 02:09"), 30, "outage"),
        (day("2024-03-02 23:00"), day("2024-03-02 23:59"), 60, "partial_file"),
        (day("2024-03-03 00:00"), day("2024-03-03 23:59"), 1440, "missing_file"),
        (day("2024-03-04 00:00"), day("2024-03-04 00:09"), 10, "partial_file"),
    ]
    got = list(g[["start", "end", "missing", "cause"]].itertuples(index=False, name=None))
    assert got[:4] == want
    assert got[4][3] == "relisting" and got[4][0] == day("2024-03-05")
    assert got[4][1] == day("2024-04-19 23:59")
    assert report.gaps[["start", "cause"]].equals(g[["start", "cause"]])
    # rows plus missing bars cover the whole grid
    cov = lake.silver.um_klines_1m.coverage().iloc[0]
    assert cov["missing"] == g["missing"].sum()


def test_flat_zero_volume_bars_are_a_halt(tmp_path):
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    key = b.klines("um", "ETHUSDT", "1m", "2024-05-01")
    lines = b.file(key).csv.decode().splitlines()
    header, rows = lines[0], lines[1:]
    for i in range(600, 674):                     # 74 minutes halted, like 2024-10-28 on um
        f = rows[i].split(",")
        f[1] = f[2] = f[3] = f[4] = rows[599].split(",")[4]
        f[5] = f[7] = f[9] = f[10] = "0"
        f[8] = "0"
        rows[i] = ",".join(f)
    b.raw(key, ("\n".join([header] + rows) + "\n").encode())
    lake, _ = ingest(tmp_path, b, "ETHUSDT", "2024-05-01", "2024-05-01")
    g = lake.silver.um_klines_1m.gaps()
    halts = g[g["cause"] == "halt"]
    assert len(halts) == 1
    h = halts.iloc[0]
    assert h["start"] == pd.Timestamp("2024-05-01 10:00", tz="UTC")
    assert h["end"] == pd.Timestamp("2024-05-01 11:13", tz="UTC") and h["missing"] == 74

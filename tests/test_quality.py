"""Gap causes: each scenario is built in the archive, ingested, and the cause read back."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401

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


def _edit_rows(b, key, edits):
    """Rewrite rows of one archive file: edits maps row index -> 'flat' (zero volume, prices
    of the row before) or 'quiet' (zero volume, prices kept)."""
    lines = b.file(key).csv.decode().splitlines()
    header, rows = lines[0], lines[1:]
    for i, kind in sorted(edits.items()):
        f = rows[i].split(",")
        if kind == "flat":
            f[1] = f[2] = f[3] = f[4] = rows[i - 1].split(",")[4] if i else f[1]
        f[5] = f[7] = f[8] = f[9] = f[10] = "0"
        rows[i] = ",".join(f)
    b.raw(key, ("\n".join([header] + rows) + "\n").encode())


def test_halts_are_found_across_month_ends_and_only_where_prices_stay_flat(tmp_path):
    """Table.gaps reads the zero-volume rows' times first and prices only for symbols with a
    long enough run: it must name exactly the runs of >= 15 flat zero-volume bars that a
    plain scan of every row names, including one across a month end, and no long run of
    zero-volume bars whose prices move."""
    import numpy as np
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    k1 = b.klines("um", "BTCUSDT", "1m", "2024-04-30")
    k2 = b.klines("um", "BTCUSDT", "1m", "2024-05-01")
    _edit_rows(b, k1, {i: "flat" for i in range(1430, 1440)})          # 10 flat bars to 23:59 ...
    _edit_rows(b, k2, {**{i: "flat" for i in range(0, 8)},              # ... and 8 after midnight
                       **{i: "quiet" for i in range(300, 340)},         # 40 unflat zero-volume bars
                       **{i: "flat" for i in range(500, 514)}})         # 14 flat bars: too short
    k3 = b.klines("um", "ETHUSDT", "1m", "2024-05-01")
    _edit_rows(b, k3, {i: "flat" for i in range(60, 80)})               # 20 flat bars
    k4 = b.klines("um", "SOLUSDT", "1m", "2024-05-01")                 # 10 zero-volume bars in
    _edit_rows(b, k4, {i: "flat" for i in range(60, 70)})               # all: never read
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url))
    lake.ingest("um", "klines", interval="1m", start="2024-04-30", end="2024-05-01",
                progress=False, today=TODAY)
    t = lake.silver.um_klines_1m
    g = t.gaps()
    got = sorted((r.symbol, r.start, r.end, r.missing) for r in g[g["cause"] == "halt"].itertuples())

    df = t.read(["BTCUSDT", "ETHUSDT", "SOLUSDT"]).reset_index()  # the oracle: every row, by hand
    want = []
    for sym, x in df.groupby("symbol"):
        x = x.sort_values("open_time")
        flat = ((x["volume"] == 0) & (x["open"] == x["high"]) & (x["high"] == x["low"])
                & (x["low"] == x["close"])).to_numpy()
        tm = x["open_time"].to_numpy()
        i = 0
        while i < len(x):
            j = i
            while flat[i] and j + 1 < len(x) and flat[j + 1] and tm[j + 1] - tm[j] == np.timedelta64(60, "s"):
                j += 1
            if flat[i] and j - i + 1 >= 15:
                want.append((sym, pd.Timestamp(tm[i]).tz_localize("UTC") if pd.Timestamp(tm[i]).tz is None
                             else pd.Timestamp(tm[i]), pd.Timestamp(tm[j]) if pd.Timestamp(tm[j]).tz
                             else pd.Timestamp(tm[j]).tz_localize("UTC"), j - i + 1))
            i = j + 1
    assert got == sorted(want)
    assert [(s, m) for s, _, _, m in got] == [("BTCUSDT", 18), ("ETHUSDT", 20)]
    assert got[0][1] == pd.Timestamp("2024-04-30 23:50", tz="UTC")


def test_gaps_from_partition_stats_equal_gaps_from_the_rows(tmp_path):
    """Table.gaps takes the bar times of provably complete kline partitions from metadata
    (no data read); across month ends, sub-ranges, relistings and partial files it must
    name exactly the gaps that reading every row names."""
    from cryptolake import quality
    from cryptolake.query import _to_timestamp
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    for d in ("2024-03-30", "2024-03-31", "2024-04-01", "2024-04-03"):   # 04-02 never published
        b.klines("um", "BTCUSDT", "1m", d)
    b.klines("um", "ETHUSDT", "1m", "2024-03-31")
    b.klines("um", "ETHUSDT", "1m", "2024-04-01", missing=[slice(0, 10)])   # starts late
    b.klines("um", "SOLUSDT", "1m", "2024-03-01")                          # relisted on 04-20
    b.klines("um", "SOLUSDT", "1m", "2024-04-20")
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url))
    r = lake.ingest("um", "klines", interval="1m", start="2024-03-01", end="2024-04-30",
                    progress=False, today=TODAY)
    t = lake.silver.um_klines_1m
    day = lambda s: pd.Timestamp(s, tz="UTC")                                       # noqa: E731
    g = t.gaps()
    got = {(s, c): (a, z, n) for s, a, z, n, c in g[["symbol", "start", "end", "missing", "cause"]]
           .itertuples(index=False, name=None)}
    assert got[("BTCUSDT", "missing_file")] == (day("2024-04-02"), day("2024-04-02 23:59"), 1440)
    assert got[("ETHUSDT", "partial_file")] == (day("2024-04-01"), day("2024-04-01 00:09"), 10)
    assert got[("SOLUSDT", "relisting")][:2] == (day("2024-03-02"), day("2024-04-19 23:59"))
    assert len(g) == 3
    assert r.gaps.reset_index(drop=True).equals(g)
    assert t.gaps(["BTCUSDT"], "2024-03-31", "2024-04-01").empty
    for syms, s, e in [(None, None, None), (["SOLUSDT"], "2024-03-01 12:00", "2024-04-20 06:00"),
                       (["BTCUSDT", "ETHUSDT"], "2024-03-31", "2024-04-02"),
                       (["SOLUSDT"], "2024-03-05", "2024-03-06")]:
        fast = t.gaps(syms, s, e)
        a, z = _to_timestamp(s, end=False), _to_timestamp(e, end=True)
        lo, hi = (None if a is None else a.value // 1000), (None if z is None else z.value // 1000)
        want_syms = syms or ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
        spans = {k: v for k, v in lake._file_spans(t.name).items() if k in want_syms}
        rows = t.read_arrow(want_syms, a, z, columns=["open_time"])
        times = {x: rows.filter(pa.compute.equal(rows["symbol"], x))["open_time"].to_numpy()
                 .astype("datetime64[us]").astype("int64") for x in want_syms}
        slow = quality.table_gaps("1m", {k: v for k, v in times.items() if len(v)}, spans, lo, hi, None,
                                  quality.relisting_days("um", "klines", "1m"))
        assert fast.equals(slow), (syms, s, e, fast, slow)

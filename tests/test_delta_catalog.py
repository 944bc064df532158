"""The catalog from the Delta log: symbols, reprs and partition_stats() open no data file.

Files opened are counted by the kernel (inotify IN_OPEN on every partition directory), so the
count covers opens made by pyarrow and delta-rs too. Expected values come from the generated
inputs, not from the lake.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import write_deltalake

import cryptolake as cl
from cryptolake import schema
from cryptolake.layers import catalog, silver
from cryptolake.testing.archive import ArchiveBuilder
from cryptolake.testing.fsopen import OpenCounter

SCH = schema.silver_schema("um", "klines")
MONTHS = ["2024-01", "2024-02", "2024-03"]
HOUR_US = 3_600_000_000


def month_bars(symbol_no: int, month: str, off_grid: int = 0, zero_volume: int = 0) -> pa.Table:
    """Hourly bars of a whole month; `off_grid` extra rows 30 s after the hour, `zero_volume`
    bars with volume 0 (the first ones)."""
    lo = pd.Timestamp(month + "-01", tz="UTC")
    hi = lo + pd.offsets.MonthBegin(1)
    t = np.arange(lo.value // 1000, hi.value // 1000, HOUR_US, dtype=np.int64)
    t = np.sort(np.r_[t, t[1:1 + off_grid] + 30_000_000])
    n = len(t)
    vol = np.full(n, 1.0 + symbol_no)
    vol[:zero_volume] = 0.0
    cols = {"open_time": pa.array(t.astype("datetime64[us]"), pa.timestamp("us")).cast(schema.TS)}
    for c in SCH.names[1:]:
        f = SCH.field(c)
        if c == "volume":
            cols[c] = pa.array(vol)
        elif pa.types.is_timestamp(f.type):
            cols[c] = pa.array((t + HOUR_US - 1000).astype("datetime64[us]"), pa.timestamp("us")).cast(schema.TS)
        elif pa.types.is_integer(f.type):
            cols[c] = pa.array(np.full(n, 7, np.int64))
        elif pa.types.is_string(f.type):
            cols[c] = pa.array(["archive_daily"] * n)
        else:
            cols[c] = pa.array(np.full(n, 100.0 + symbol_no))
    return pa.table(cols, schema=SCH)


@pytest.fixture(scope="module")
def big_lake(tmp_path_factory):
    """100 symbols x 3 months of 1h bars, written in one commit through the layer writer;
    SYM007 has 5 off-grid rows in February and SYM042 12 zero-volume bars in March."""
    root = tmp_path_factory.mktemp("big") / "lake"
    lake = cl.Lake(str(root))
    parts = {}
    for i in range(100):
        for m in MONTHS:
            parts[(f"SYM{i:03d}", m)] = month_bars(i, m, off_grid=5 if (i, m) == (7, "2024-02") else 0,
                                                   zero_volume=12 if (i, m) == (42, "2024-03") else 0)
    silver.write_partitions(lake.storage, "silver", "um_klines_1h", SCH, "open_time", "1h", parts)
    return root


def test_partition_stats_symbols_and_reprs_open_no_data_file(big_lake):
    lake = cl.Lake(str(big_lake))
    t = lake.silver.um_klines_1h
    with OpenCounter(big_lake / "silver") as c:
        stats = t.partition_stats()
        syms = t.symbols
        text, page = repr(t), t._repr_html_()
        cov = t.coverage().set_index("symbol")
    assert c.count == 0, c.opened[:5]
    assert len(cov) == 100 and cov.loc["SYM007", "off_grid"] == 5 and (cov["missing"] == 0).all()
    assert cov.loc["SYM042", "zero_volume"] == 12 and cov.loc["SYM000", "expected"] == 91 * 24
    assert syms == [f"SYM{i:03d}" for i in range(100)]
    assert "100 symbols" in text and "300 partitions" in page
    assert len(stats) == 300 and list(stats.columns) == catalog.STATS_COLUMNS
    s = stats.set_index(["symbol", "month"])
    hours = {"2024-01": 31 * 24, "2024-02": 29 * 24, "2024-03": 31 * 24}
    assert s.loc[("SYM007", "2024-02"), "rows"] == hours["2024-02"] + 5
    assert s.loc[("SYM007", "2024-02"), "off_grid"] == 5
    assert s.loc[("SYM007", "2024-02"), "on_grid"] == hours["2024-02"]
    assert s.loc[("SYM042", "2024-03"), "zero_volume"] == 12
    assert s.loc[("SYM001", "2024-01"), "first"] == pd.Timestamp("2024-01-01", tz="UTC")
    assert s.loc[("SYM001", "2024-03"), "last"] == pd.Timestamp("2024-03-31 23:00", tz="UTC")
    assert s["off_grid"].sum() == 5 and s["zero_volume"].sum() == 12
    assert (s.drop(("SYM007", "2024-02"))["rows"] == [hours[m] for _, m in s.drop(("SYM007", "2024-02")).index]).all()


def test_the_counter_sees_reads_and_a_symbol_read_opens_only_its_files(big_lake):
    t = cl.Lake(str(big_lake)).silver.um_klines_1h
    with OpenCounter(big_lake / "silver") as c:
        df = t.read("SYM013", start="2024-02-10", end="2024-02-16")
    assert len(df) == 7 * 24
    assert c.count >= 1 and all("symbol=SYM013" in p for p in c.opened)
    assert all("month=2024-02" in p or "month=2024-01" in p or "month=2024-03" in p for p in c.opened)


def test_catalog_out_of_step_with_the_log_is_recomputed_and_repaired(tmp_path):
    """A crash between the data commit and the catalog upsert: the log has new rows, the
    catalog the old counts. partition_stats() recomputes that partition and repairs it."""
    lake = cl.Lake(str(tmp_path / "lake"))
    parts = {("AAA", m): month_bars(1, m) for m in MONTHS}
    silver.write_partitions(lake.storage, "silver", "um_klines_1h", SCH, "open_time", "1h", parts)
    new = month_bars(1, "2024-02", off_grid=3, zero_volume=2)
    write_deltalake(lake.storage.table_uri("silver/um_klines_1h"),            # data only, no catalog
                    new.append_column("symbol", pa.array(["AAA"] * new.num_rows))
                       .append_column("month", pa.array(["2024-02"] * new.num_rows)),
                    mode="overwrite", predicate="symbol = 'AAA' AND month = '2024-02'")
    t = lake.silver.um_klines_1h
    stale = catalog.read(lake.storage, "silver", "um_klines_1h").set_index("month")
    assert stale.loc["2024-02", "rows"] == 29 * 24                          # the catalog is behind
    s = t.partition_stats().set_index("month")
    assert s.loc["2024-02", "rows"] == 29 * 24 + 3
    assert s.loc["2024-02", "off_grid"] == 3 and s.loc["2024-02", "zero_volume"] == 2
    fixed = catalog.read(lake.storage, "silver", "um_klines_1h").set_index("month")
    assert fixed.loc["2024-02", "rows"] == 29 * 24 + 3 and fixed.loc["2024-02", "off_grid"] == 3
    with OpenCounter(tmp_path / "lake" / "silver") as c:                    # repaired: metadata only again
        again = t.partition_stats()
    assert c.count == 0 and again["off_grid"].sum() == 3


def test_ingest_records_partition_stats_at_write_time(tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    b = ArchiveBuilder(root.as_uri())
    b.klines("um", "BTCUSDT", "1m", "2024-03-04")
    b.klines("um", "BTCUSDT", "1m", "2024-03-05", missing=[slice(10, 40)])
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(root.as_uri()))
    assert lake.ingest("um", "klines", interval="1m", progress=False, today=dt.date(2026, 11, 26)).ok
    cat = catalog.read(lake.storage, "silver", "um_klines_1m")
    assert cat[["symbol", "month", "rows", "on_grid", "off_grid"]].values.tolist() == [
        ["BTCUSDT", "2024-03", 2 * 1440 - 30, 2 * 1440 - 30, 0]]
    assert cat["written_version"].iloc[0] == lake.silver.um_klines_1m.version
    s = lake.silver.um_klines_1m.partition_stats().iloc[0]
    assert s["first"] == pd.Timestamp("2024-03-04", tz="UTC") and s["last"] == pd.Timestamp("2024-03-05 23:59", tz="UTC")


def test_partition_stats_of_an_empty_table_is_empty(tmp_path):
    lake = cl.Lake(str(tmp_path / "lake"))
    silver.ensure_table(lake.storage, "silver", "um_klines_1h", SCH)
    s = lake.silver.um_klines_1h.partition_stats()
    assert s.empty and list(s.columns) == catalog.STATS_COLUMNS
    assert lake.silver.um_klines_1h.symbols == []


def test_catalog_latest_row_wins_and_optimize_keeps_only_it(tmp_path):
    lake = cl.Lake(str(tmp_path / "lake"))
    for off in (0, 2, 4):                                    # the same partition rewritten 3 times
        silver.write_partitions(lake.storage, "silver", "um_klines_1h", SCH, "open_time", "1h",
                                {("AAA", "2024-01"): month_bars(1, "2024-01", off_grid=off)})
    from deltalake import DeltaTable
    raw = DeltaTable(lake.storage.table_uri(catalog.CATALOG_REL)).to_pandas()
    assert len(raw) == 3
    assert catalog.read(lake.storage, "silver", "um_klines_1h")["off_grid"].tolist() == [4]
    assert lake.silver.um_klines_1h.partition_stats()["off_grid"].tolist() == [4]
    lake.optimize()
    raw = DeltaTable(lake.storage.table_uri(catalog.CATALOG_REL)).to_pandas()
    assert raw["off_grid"].tolist() == [4]


def test_partition_stats_of_an_old_version_describe_that_version(tmp_path):
    lake = cl.Lake(str(tmp_path / "lake"))
    silver.write_partitions(lake.storage, "silver", "um_klines_1h", SCH, "open_time", "1h",
                            {("AAA", "2024-01"): month_bars(1, "2024-01", zero_volume=3)})
    v = lake.silver.um_klines_1h.version
    silver.write_partitions(lake.storage, "silver", "um_klines_1h", SCH, "open_time", "1h",
                            {("AAA", "2024-01"): month_bars(1, "2024-01", zero_volume=9)})
    t = lake.silver.um_klines_1h
    assert t.partition_stats()["zero_volume"].tolist() == [9]
    assert t.partition_stats(version=v)["zero_volume"].tolist() == [3]
    assert lake.at(lake.versions()).silver.um_klines_1h.partition_stats()["zero_volume"].tolist() == [9]
    assert t.partition_stats()["zero_volume"].tolist() == [9]          # the old read repaired nothing

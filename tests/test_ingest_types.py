"""Every data type through lake.ingest: exact deduplicated counts, UTC times, the contract's
table names — from archive files the builder writes (and checks independently)."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

import cryptolake as cl
from cryptolake import schema
from cryptolake.testing.archive import ArchiveBuilder

TODAY = dt.date(2026, 11, 26)

CASES = [  # market, data_type, builder method, period, table
    ("spot", "aggTrades", "agg_trades", "2024-03-01", "spot_agg_trades"),
    ("um", "aggTrades", "agg_trades", "2024-03-01", "um_agg_trades"),
    ("cm", "aggTrades", "agg_trades", "2024-03-01", "cm_agg_trades"),
    ("spot", "trades", "trades", "2025-02-01", "spot_trades"),
    ("um", "trades", "trades", "2024-03-01", "um_trades"),
    ("cm", "trades", "trades", "2024-03-01", "cm_trades"),
    ("um", "metrics", "metrics", "2024-03-01", "um_metrics"),
    ("um", "bookDepth", "book_depth", "2024-03-01", "um_book_depth"),
    ("um", "bookTicker", "book_ticker", "2024-03-01", "um_book_ticker"),
    ("cm", "liquidationSnapshot", "liquidation_snapshot", "2024-03-01", "cm_liquidation_snapshot"),
]


@pytest.mark.parametrize("market,data_type,method,period,table", CASES)
def test_each_type_lands_exactly(tmp_path, market, data_type, method, period, table):
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    symbol = {"cm": "BTCUSD_PERP"}.get(market, "BTCUSDT")
    key = getattr(b, method)(market, symbol, period, duplicates=5, shuffle=True)
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url))
    report = lake.ingest(market, data_type, symbol, start=period, end=period, progress=False, today=TODAY)
    assert report.ok, report.errors
    assert lake.silver.tables == [table]
    got = lake.silver[table].read(symbol)
    want = b.frame(key)
    tcol = schema.time_column(data_type)
    assert len(got) == len(want) and report.rows[table] == len(want)
    assert str(got.index.dtype) == "datetime64[us, UTC]"
    keys = [c for c in schema.natural_key(data_type) if c != tcol]
    got = got.reset_index().sort_values([tcol, *keys], ignore_index=True)
    want = want.sort_values([tcol, *keys], ignore_index=True)
    for col in want.columns:
        pd.testing.assert_series_equal(got[col], want[col], check_names=False, check_dtype=False)
    again = lake.ingest(market, data_type, symbol, start=period, end=period, progress=False, today=TODAY)
    assert set(again.files["status"]) == {"unchanged"} and len(lake.silver[table].read(symbol)) == len(want)


def test_event_tables_count_missing_days(tmp_path):
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    for day in ("2024-03-01", "2024-03-02", "2024-03-05"):           # 03-03, 03-04 never published
        b.agg_trades("um", "BTCUSDT", day)
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url))
    report = lake.ingest("um", "aggTrades", "BTCUSDT", start="2024-03-01", end="2024-03-05",
                         progress=False, today=TODAY)
    t = lake.silver.um_agg_trades
    want = [("BTCUSDT", pd.Timestamp("2024-03-03", tz="UTC"), pd.Timestamp("2024-03-04", tz="UTC"), 2,
             "missing_file")]
    got = list(t.gaps()[["symbol", "start", "end", "missing", "cause"]].itertuples(index=False, name=None))
    assert got == want == list(report.gaps[["symbol", "start", "end", "missing", "cause"]]
                               .itertuples(index=False, name=None))
    cov = t.coverage().iloc[0]
    assert (cov["expected"], cov["missing"]) == (5, 2) and cov["rows"] == len(t.read("BTCUSDT"))

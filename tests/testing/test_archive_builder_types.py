"""The ArchiveBuilder's non-kline files look like the archive's (docs/binance-archive.md §3-§5)
and its frames say what was written. Checked with stdlib tools only (zipfile, csv, hashlib,
datetime, decimal) and layout.parse_archive_key; never with the parser."""
from __future__ import annotations

import csv as stdcsv
import datetime as dt
import hashlib
import io
import zipfile
from decimal import Decimal

import fsspec
import numpy as np
import pandas as pd
import pytest

from cryptolake import schema
from cryptolake.layout import parse_archive_key
from cryptolake.testing.archive import ArchiveBuilder, realistic_header
from cryptolake.testing.archive_types import (_setup, render_agg_trades, render_book_depth,
                                              render_book_ticker, render_liquidation_snapshot,
                                              render_metrics, render_trades)

UTC = dt.timezone.utc


def _rows(csv: bytes) -> list[list[str]]:
    return list(stdcsv.reader(io.StringIO(csv.decode())))


def _epoch(s: str) -> pd.Timestamp:
    v = int(s)
    return pd.Timestamp(v, unit="us" if v >= 10**14 else "ms", tz="UTC")


def _naive_utc(s: str) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.strptime(s, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC))


# ---------------------------------------------------------------- layout and bytes
def test_every_method_writes_layout_zip_and_checksum(local_archive):
    b = local_archive.builder
    keys = [
        b.agg_trades("spot", "BTCUSDT", "2025-01-02"),
        b.agg_trades("um", "BTCUSDT", "2024-01"),
        b.trades("cm", "BTCUSD_PERP", "2024-01-02"),
        b.metrics("um", "BTCUSDT", "2024-01-02"),
        b.book_depth("cm", "BTCUSD_PERP", "2024-01-02"),
        b.book_ticker("um", "BTCUSDT", "2023-06"),
        b.liquidation_snapshot("cm", "BTCUSD_PERP", "2024-01-02"),
    ]
    assert [k.key for k in keys[:2]] == [
        "data/spot/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2025-01-02.zip",
        "data/futures/um/monthly/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-01.zip"]
    fs, root = fsspec.core.url_to_fs(local_archive.url)
    for k in keys:
        assert parse_archive_key(k.key) == k
        data = fs.cat_file(f"{root}/{k.key}")
        assert fs.cat_file(f"{root}/{k.checksum_key}") == \
            f"{hashlib.sha256(data).hexdigest()}  {k.filename}\n".encode()
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            (info,) = zf.infolist()
            csv = zf.read(info)
        assert info.filename == k.filename[:-4] + ".csv"
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert b"\r" not in csv and csv.endswith(b"\n") and not csv.endswith(b"\n\n")
        assert len(b.frame(k)) > 0 and list(b.frame(k).columns) == \
            schema.silver_schema(k.market, k.data_type).names
    assert b.frame(keys[0]) is not b.frame(keys[0])              # copies


# ---------------------------------------------------------------- realism rules
@pytest.mark.parametrize("market,data_type,period,header", [
    ("spot", "aggTrades", "2026-01-02", False), ("spot", "trades", "2019-01", False),
    ("um", "aggTrades", "2022-08-10", False), ("um", "aggTrades", "2022-08-11", True),
    ("um", "trades", "2022-07", False), ("um", "trades", "2022-08", True),
    ("cm", "aggTrades", "2021-03-04", False), ("cm", "trades", "2026-05-08", True),
    ("um", "metrics", "2020-09-01", True), ("cm", "bookDepth", "2023-01-01", True),
    ("um", "bookTicker", "2023-05-16", True), ("cm", "liquidationSnapshot", "2023-06-25", True),
])
def test_headers_follow_the_archive(market, data_type, period, header):
    render = {"aggTrades": render_agg_trades, "trades": render_trades, "metrics": render_metrics,
              "bookDepth": render_book_depth, "bookTicker": render_book_ticker,
              "liquidationSnapshot": render_liquidation_snapshot}[data_type]
    f = render(market, "BTCUSD_PERP" if market == "cm" else "BTCUSDT", period)
    assert f.header == header
    first = _rows(f.csv)[0]
    assert (first[0] in ("agg_trade_id", "id", "create_time", "timestamp", "update_id", "time")) == header
    cadence = "daily" if len(period) == 10 else "monthly"
    day = dt.date.fromisoformat(period if cadence == "daily" else period + "-01")
    assert realistic_header(market, data_type, cadence, day) == header


def test_booleans_and_units_per_market():
    spot_old = _rows(render_agg_trades("spot", "BTCUSDT", "2024-12-31", rows=50).csv)
    spot_new = _rows(render_agg_trades("spot", "BTCUSDT", "2025-01-01", rows=50).csv)
    um = _rows(render_agg_trades("um", "BTCUSDT", "2025-01-01", rows=50).csv)[1:]
    assert {r[6] for r in spot_old} <= {"True", "False"} and {r[7] for r in spot_old} == {"True"}
    assert {r[6] for r in um} <= {"true", "false"} and len(um[0]) == 7
    assert all(len(r[5]) == 13 for r in spot_old + um)
    assert all(len(r[5]) == 16 for r in spot_new)
    assert any(int(r[5]) % 1000 for r in spot_new)               # real sub-ms digits
    trades = _rows(render_trades("spot", "BTCUSDT", "2025-02-01", rows=50).csv)
    assert len(trades[0]) == 7 and {r[5] for r in trades} <= {"True", "False"}
    assert all(len(r[4]) == 16 for r in trades)


def test_metrics_format_empty_fields_and_padding():
    f = render_metrics("cm", "BTCUSD_PERP", "2022-06-25", empty=[0, 1], missing=[287])
    raw = f.csv.decode().splitlines()
    assert raw[1].split(",")[4:7] == ['""', '""', '""']           # quoted empties, like the archive
    rows = _rows(f.csv)[1:]
    assert len(rows) == 287 and rows[0][0] == "2022-06-25 00:00:00" and rows[0][1] == "BTCUSD_PERP"
    assert rows[0][2].endswith("0" * 13) and len(rows[0][3].split(".")[1]) == 16
    assert len(rows[5][4].split(".")[1]) == 16                  # 2021-12..2023-07: 16 decimals
    assert len(_rows(render_metrics("um", "BTCUSDT", "2024-01-01").csv)[1][4].split(".")[1]) == 8
    fr = f.frame
    assert fr.count_long_short_ratio.isna().sum() == 2 and fr.sum_taker_long_short_vol_ratio.notna().all()
    shifted = _rows(render_metrics("um", "BTCUSDT", "2025-12-31", shift=True).csv)[1:]
    assert shifted[0][0] == "2025-12-31 00:05:00" and shifted[-1][0] == "2026-01-01 00:00:00"


@pytest.mark.parametrize("make", [
    lambda: render_agg_trades("um", "BTCUSDT", "2024-03-01", rows=300, duplicates=6, shuffle=True),
    lambda: render_agg_trades("spot", "BTCUSDT", "2025-03-01", rows=300, interleave=5),
    lambda: render_trades("cm", "BTCUSD_PERP", "2024-03", rows=300, duplicates="all"),
    lambda: render_trades("spot", "BTCUSDT", "2024-03-01", rows=300),
    lambda: render_metrics("um", "BTCUSDT", "2022-03-01", empty=[3], duplicates=4, shuffle=True),
    lambda: render_book_depth("cm", "BTCUSD_PERP", "2024-03-01", snapshots=30, duplicates=5),
    lambda: render_book_ticker("cm", "BTCUSD_PERP", "2024-03-01", rows=300, shuffle=True),
    lambda: render_liquidation_snapshot("cm", "BTCUSD_PERP", "2024-03-01", duplicates=8, shuffle=True),
])
def test_frame_matches_the_written_text(make):
    """Independent reading: stdlib csv, Decimal, datetime; dedup by first occurrence of the
    natural key; sort by (time, key)."""
    f = make()
    rows = _rows(f.csv)
    names = [n for n in schema.silver_schema(f.key.market, f.key.data_type).names if n != "source"]
    file_cols = list(names)
    if f.key.data_type == "metrics":
        file_cols.insert(1, "symbol")
    if f.header:
        assert rows[0] == file_cols
        rows = rows[1:]
    assert len(rows) == f.rows_written
    sch = schema.silver_schema(f.key.market, f.key.data_type)
    recs = []
    for r in rows:
        d = dict(zip(file_cols, r))
        rec = {}
        for n in names:
            v, t = d[n], sch.field(n).type
            if t == schema.TS:
                rec[n] = _epoch(v) if v.isdigit() else _naive_utc(v)
            elif t == "bool":
                rec[n] = {"true": True, "false": False}[v.lower()]
            elif t == "int64":
                rec[n] = int(v)
            elif t == "double":
                rec[n] = float(Decimal(v)) if v else np.nan
            else:
                rec[n] = v
        recs.append(rec)
    df = pd.DataFrame(recs, columns=names)
    key = list(schema.natural_key(f.key.data_type))
    df = df.drop_duplicates(subset=key, keep="first")
    tcol = schema.time_column(f.key.data_type)
    df = df.sort_values(list(dict.fromkeys([tcol, *key])), kind="mergesort", ignore_index=True)
    assert len(df) == len(f.frame)
    exp = f.frame
    for n in names:
        a, e = df[n].tolist(), exp[n].tolist()
        if sch.field(n).type == "double":
            assert np.array_equal(np.array(a, float), np.array(e, float), equal_nan=True), n
        else:
            assert a == e, n
    assert set(exp.source) == {"archive_monthly" if f.key.cadence == "monthly" else "archive_daily"}


def test_duplicate_counts_and_values():
    f = render_agg_trades("um", "BTCUSDT", "2024-01-02", rows=100, duplicates=7)
    assert f.rows_written == 107 and len(f.frame) == 100
    rows = _rows(f.csv)[1:]
    dup = [i for i in range(1, len(rows)) if rows[i] == rows[i - 1]]
    assert len(dup) == 7                                         # doubled rows are adjacent copies
    f = render_trades("um", "BTCUSDT", "2024-01-02", rows=100, duplicates="all")
    assert f.rows_written == 200
    ids = [int(r[0]) for r in _rows(f.csv)[1:]]
    assert ids[::2] == ids[1::2] == sorted(set(ids))
    f = render_agg_trades("um", "BTCUSDT", "2023-05", rows=400, interleave=3)
    ids = [int(r[0]) for r in _rows(f.csv)[1:]]
    assert ids != sorted(ids) and sorted(ids) == list(range(min(ids), min(ids) + 400))


def test_values_are_plausible():
    f = render_agg_trades("um", "BTCUSDT", "2024-01-02", rows=500)
    fr = f.frame
    assert fr.agg_trade_id.diff().dropna().eq(1).all()
    assert (fr.first_trade_id.iloc[1:].to_numpy() == fr.last_trade_id.iloc[:-1].to_numpy() + 1).all()
    assert (fr.last_trade_id >= fr.first_trade_id).all() and (fr.quantity > 0).all()
    bt = render_book_ticker("um", "BTCUSDT", "2024-01-02", rows=500).frame
    assert (bt.best_ask_price > bt.best_bid_price).all() and (bt.event_time >= bt.transaction_time).all()
    bd = render_book_depth("um", "BTCUSDT", "2024-01-02", snapshots=20).frame
    assert sorted(set(bd.percentage)) == [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]
    assert bd.groupby("timestamp").size().eq(10).all()
    liq = render_liquidation_snapshot("cm", "BTCUSD_PERP", "2024-01-02").frame
    assert set(liq.side) == {"BUY", "SELL"} and (liq.last_fill_quantity <= liq.accumulated_fill_quantity).all()
    tr = render_trades("um", "BTCUSDT", "2024-01-02", rows=200).frame
    assert np.allclose(tr.quote_qty, tr.price * tr.qty, rtol=1e-12)


def test_deterministic_for_a_seed():
    a = render_trades("um", "BTCUSDT", "2024-01-02", seed=4)
    b = render_trades("um", "BTCUSDT", "2024-01-02", seed=4)
    c = render_trades("um", "BTCUSDT", "2024-01-02", seed=5)
    assert a.zip == b.zip and a.csv != c.csv


def test_bad_requests_raise():
    b = ArchiveBuilder("memory://bad-types")
    with pytest.raises(ValueError, match="market 'um' has no 'liquidationSnapshot'"):
        b.liquidation_snapshot("um", "BTCUSDT", "2024-01-02")
    with pytest.raises(ValueError, match="market 'spot' has no 'metrics'"):
        b.metrics("spot", "BTCUSDT", "2024-01-02")
    with pytest.raises(ValueError, match="needs a period like 2024-01-31, got '2024-01'"):
        b.metrics("um", "BTCUSDT", "2024-01")
    with pytest.raises(ValueError, match="only daily files, not monthly"):
        _setup("um", "metrics", "BTCUSDT", "2024-01", "monthly")
    with pytest.raises(ValueError, match="unit must be 'ms' or 'us'"):
        b.agg_trades("um", "BTCUSDT", "2024-01-02", unit="s")
    assert b.files == {}

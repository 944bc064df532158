"""parse.py against real archive files (checked with an independent stdlib reading) and
against files the ArchiveBuilder generated (checked against what the builder says it wrote)."""
from __future__ import annotations

import csv as stdcsv
import io
import zipfile
from concurrent.futures import ThreadPoolExecutor

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cryptolake import schema
from cryptolake.layout import ArchiveKey, parse_archive_key
from cryptolake.sources.parse import ParseError, parse_csv, parse_file, read_zip
from cryptolake.testing.archive import render_funding, render_klines, zip_csv

HOUR_US = 3_600_000_000


def _rows(zip_bytes: bytes) -> list[list[str]]:
    """Independent reading: stdlib zipfile + csv."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        text = zf.read(zf.namelist()[0]).decode()
    return list(stdcsv.reader(io.StringIO(text)))


def _check(table: pa.Table, expected: pd.DataFrame) -> None:
    """Parsed table == the builder's frame: same columns, dtypes and exact values."""
    pd.testing.assert_frame_equal(table.to_pandas(), expected, check_exact=True)


# ---------------------------------------------------------------- real files
def test_real_spot_microsecond_hourly_klines(real_archive_dir, real_archive_keys):
    keys = [k for k in real_archive_keys if k.startswith("data/spot/daily/klines/")]
    assert len(keys) == 2
    for k in keys:
        key = parse_archive_key(k)
        data = (real_archive_dir / k).read_bytes()
        t = parse_file(data, key)
        assert t.schema == schema.silver_schema("spot", "klines")
        assert t.num_rows == 24
        day = pd.Timestamp(key.period, tz="UTC")
        df = t.to_pandas()
        assert list(df.open_time) == [day + pd.Timedelta(hours=h) for h in range(24)]
        assert (df.close_time - df.open_time == pd.Timedelta(hours=1) - pd.Timedelta(microseconds=1)).all()
        assert (df.source == "archive_daily").all()
        raw = _rows(data)
        assert len(raw) == 24 and int(raw[0][0]) >= 10**15          # µs in the file
        for row, (_, r) in zip(raw, df.iterrows()):
            assert r.open_time.value // 1000 == int(row[0])
            assert r.close_time.value // 1000 == int(row[6])
            assert [r.open, r.high, r.low, r.close, r.volume] == [float(x) for x in row[1:6]]
            assert [r.quote_volume, r.taker_buy_volume, r.taker_buy_quote_volume] == \
                [float(row[7]), float(row[9]), float(row[10])]
            assert r.trades == int(row[8])


def test_real_um_funding_rate(real_archive_dir, real_archive_keys):
    (k,) = [k for k in real_archive_keys if "/fundingRate/" in k]
    key = parse_archive_key(k)
    data = (real_archive_dir / k).read_bytes()
    t = parse_file(data, key)
    assert t.schema == schema.FUNDING_SCHEMA
    assert t.num_rows == 90
    df = t.to_pandas()
    raw = _rows(data)
    assert raw[0] == ["calc_time", "funding_interval_hours", "last_funding_rate"]
    assert [v.value // 1_000_000 for v in df.funding_time] == [int(r[0]) for r in raw[1:]]
    assert list(df.funding_rate) == [float(r[2]) for r in raw[1:]]
    assert (df.funding_interval_hours == 8).all()
    assert df.mark_price.isna().all()
    assert (df.source == "archive_monthly").all()
    grid = pd.date_range("2026-04-01", periods=90, freq="8h", tz="UTC")
    assert ((df.funding_time - grid).abs() < pd.Timedelta(milliseconds=50)).all()   # jitter up to 13 ms


def test_real_cm_agg_trades(real_archive_dir, real_archive_keys):
    """The real COIN-M aggTrades day: header, lower-case booleans, ms times, id order."""
    (k,) = [k for k in real_archive_keys if "/aggTrades/" in k]
    key = parse_archive_key(k)
    data = (real_archive_dir / k).read_bytes()
    t = parse_file(data, key)
    assert t.schema == schema.silver_schema("cm", "aggTrades")
    raw = _rows(data)
    assert raw[0] == ["agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
                      "transact_time", "is_buyer_maker"]
    body = raw[1:]
    assert t.num_rows == len({int(r[0]) for r in body}) == 105_280
    df = t.to_pandas()
    ids = sorted(body, key=lambda r: (int(r[5]), int(r[0])))
    for i in (0, 1, 2, 5000, len(ids) - 1):
        r, row = df.iloc[i], ids[i]
        assert r.agg_trade_id == int(row[0]) and r.price == float(row[1])
        assert r.quantity == float(row[2])
        assert (r.first_trade_id, r.last_trade_id) == (int(row[3]), int(row[4]))
        assert r.transact_time.value // 1000 == int(row[5]) * 1000
        assert r.is_buyer_maker == {"true": True, "false": False}[row[6]]
    assert df.transact_time.min() >= pd.Timestamp("2026-05-08", tz="UTC")
    assert df.transact_time.max() < pd.Timestamp("2026-05-09", tz="UTC")
    assert (df.source == "archive_daily").all()


# ---------------------------------------------------------------- generated files
CASES = [
    ("spot", "klines", "BTCUSDT"),
    ("um", "klines", "BTCUSDT"),
    ("cm", "klines", "BTCUSD_PERP"),
    ("um", "markPriceKlines", "ETHUSDT"),
    ("um", "indexPriceKlines", "ETHUSDT"),
    ("um", "premiumIndexKlines", "ETHUSDT"),
    ("cm", "markPriceKlines", "BTCUSD_PERP"),
    ("cm", "indexPriceKlines", "BTCUSD"),
    ("cm", "premiumIndexKlines", "BTCUSD_PERP"),
]


@pytest.mark.parametrize("market,data_type,symbol", CASES)
@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("unit", ["ms", "us"])
def test_generated_klines_match_builder(market, data_type, symbol, header, unit):
    f = render_klines(market, symbol, "5m", "2024-03-10", data_type=data_type, header=header,
                      unit=unit, seed=7)
    assert f.csv.startswith(b"open_time,") == header
    t = parse_file(f.zip, f.key)
    assert t.schema == schema.silver_schema(market, data_type)
    _check(t, f.frame)
    assert t.num_rows == 288


def test_monthly_file_source_and_rows():
    f = render_klines("um", "BTCUSDT", "1h", "2024-02", seed=1)
    t = parse_file(f.zip, f.key)
    assert t.num_rows == 29 * 24
    assert set(t.column("source").to_pylist()) == {"archive_monthly"}
    _check(t, f.frame)


def test_ms_and_us_files_land_on_same_instants():
    ms = render_klines("spot", "ETHUSDT", "1m", "2024-12-31", unit="ms", seed=3)
    us = render_klines("spot", "ETHUSDT", "1m", "2024-12-31", unit="us", seed=3)
    assert int(_rows(ms.zip)[0][0]) * 1000 == int(_rows(us.zip)[0][0])
    a, b = parse_file(ms.zip, ms.key), parse_file(us.zip, us.key)
    assert a.column("open_time").equals(b.column("open_time"))
    for c in ("open", "high", "low", "close", "volume", "trades"):
        assert a.column(c).equals(b.column(c))
    # close_time keeps each file's own resolution: open + 1 min - 1 ms vs - 1 µs
    da, db = a.to_pandas(), b.to_pandas()
    assert (da.close_time == da.open_time + pd.Timedelta("59999ms")).all()
    assert (db.close_time == db.open_time + pd.Timedelta("59999999us")).all()
    first = pd.Timestamp("2024-12-31", tz="UTC")
    assert da.open_time.iloc[0] == first and da.open_time.iloc[-1] == first + pd.Timedelta("1439min")


def test_units_detected_per_value_within_one_file():
    f = render_klines("spot", "BTCUSDT", "1h", "2024-06-01", unit="ms", header=False)
    lines = f.csv.decode().splitlines()
    mixed = []
    for i, line in enumerate(lines):
        parts = line.split(",")
        if i % 2:                                       # every other row in µs
            parts[0], parts[6] = str(int(parts[0]) * 1000), str(int(parts[6]) * 1000 + 999)
        mixed.append(",".join(parts))
    t = parse_csv(("\n".join(mixed) + "\n").encode(), "spot", "klines", "archive_daily")
    df = t.to_pandas()
    pd.testing.assert_series_equal(df.open_time, f.frame.open_time)
    ends = df.open_time + pd.Timedelta(hours=1)
    assert ((df.close_time == ends - pd.Timedelta("1ms")) | (df.close_time == ends - pd.Timedelta("1us"))).all()


def test_coin_m_column_names_hold_coin_volumes():
    f = render_klines("cm", "BTCUSD_PERP", "1h", "2024-05-05", seed=2)
    assert _rows(f.zip)[0][7] == "quote_volume"               # the archive's misleading name
    t = parse_file(f.zip, f.key)
    assert "base_volume" in t.column_names and "taker_buy_base_volume" in t.column_names
    assert "quote_volume" not in t.column_names and "ignore" not in t.column_names
    _check(t, f.frame)


def test_duplicates_removed_and_unsorted_input_sorted():
    f = render_klines("um", "SOLUSDT", "1m", "2024-01-02", duplicates=25, shuffle=True, seed=4)
    assert f.rows_written == 1440 + 25
    t = parse_file(f.zip, f.key)
    assert t.num_rows == 1440
    _check(t, f.frame)


def test_funding_duplicates_and_order():
    f = render_funding("cm", "BTCUSD_PERP", "2024-02", duplicates=4, shuffle=True, seed=5)
    t = parse_file(f.zip, f.key)
    assert t.schema == schema.FUNDING_SCHEMA and t.num_rows == 29 * 3
    _check(t, f.frame)


def test_conflicting_duplicate_keeps_first_row_in_file_order():
    f = render_klines("um", "BTCUSDT", "1h", "2024-01-02", header=False)
    lines = f.csv.decode().splitlines()
    parts = lines[5].split(",")
    parts[4] = "1.00"                                        # a different close, same open_time
    csv = "\n".join(lines[:8] + [",".join(parts)] + lines[8:]) + "\n"
    df = parse_csv(csv.encode(), "um", "klines", "archive_daily").to_pandas()
    assert len(df) == 24
    assert df.close.iloc[5] == f.frame.close.iloc[5] != 1.0


@pytest.mark.parametrize("missing", [[slice(100, 160)], [0, 1439],
                                     [("2024-01-02 10:00", "2024-01-02 10:30")]])
def test_missing_bars_stay_missing(missing):
    f = render_klines("spot", "BTCUSDT", "1m", "2024-01-02", missing=missing)
    t = parse_file(f.zip, f.key)
    _check(t, f.frame)
    assert t.num_rows == len(f.frame) < 1440


def test_funding_without_jitter_and_other_interval():
    f = render_funding("um", "XRPUSDT", "2024-04", interval_hours=4, jitter_ms=False)
    df = parse_file(f.zip, f.key).to_pandas()
    assert len(df) == 30 * 6
    assert (df.funding_time == pd.date_range("2024-04-01", periods=180, freq="4h", tz="UTC")).all()
    assert (df.funding_interval_hours == 4).all()


PAIRS = [(m, d) for m in schema.MARKETS for d in (*schema.KLINE_TYPES, "fundingRate") if d in schema.DATA_TYPES[m]]


@pytest.mark.parametrize("market,data_type", PAIRS)
def test_empty_and_header_only_files_give_empty_tables(market, data_type):
    target = schema.silver_schema(market, data_type)
    f = (render_funding("um", "BTCUSDT", "2024-01") if data_type == "fundingRate"
         else render_klines("um", "BTCUSDT", "1d", "2024-01-01"))
    cols = f.csv.decode().splitlines()[0]
    for body in (b"", (cols + "\n").encode()):
        t = parse_csv(body, market, data_type, "rest")
        assert t.schema == target and t.num_rows == 0


def test_threads_give_identical_results():
    files = [render_klines("um", s, "1m", "2024-01-03", seed=i)
             for i, s in enumerate(["A1USDT", "B2USDT", "C3USDT", "D4USDT"])]
    with ThreadPoolExecutor(4) as ex:
        tables = list(ex.map(lambda f: parse_file(f.zip, f.key), files))
    for f, t in zip(files, tables):
        _check(t, f.frame)


def test_s3_roundtrip_anonymous_read(s3_archive):
    b = s3_archive.builder
    key = b.klines("um", "BTCUSDT", "15m", "2024-01-05", missing=[3], duplicates=2)
    fs, root = fsspec.core.url_to_fs(s3_archive.url, **s3_archive.storage_options)
    data = fs.cat_file(f"{root}/{key.key}")
    _check(parse_file(data, key), b.frame(key))


# ---------------------------------------------------------------- bad input
def test_corrupt_zips_raise_parse_error():
    good = render_klines("spot", "BTCUSDT", "1h", "2024-01-02")
    with pytest.raises(ParseError, match="corrupt zip"):
        read_zip(b"this is not a zip")
    with pytest.raises(ParseError, match="corrupt zip"):
        read_zip(good.zip[: len(good.zip) // 2])
    damaged = bytearray(good.zip)
    damaged[60:70] = b"\x00" * 10                                 # inside the deflate stream
    with pytest.raises(ParseError):
        read_zip(bytes(damaged))
    with pytest.raises(ParseError, match="corrupt zip"):
        parse_file(b"PK\x03\x04garbage", good.key)
    assert issubclass(ParseError, ValueError)


def test_zip_with_zero_or_two_members():
    buf = io.BytesIO()
    zipfile.ZipFile(buf, "w").close()
    with pytest.raises(ParseError, match="exactly one.*found 0"):
        read_zip(buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.csv", "1\n")
        zf.writestr("b.csv", "2\n")
    with pytest.raises(ParseError, match="found 2 .*a.csv, b.csv"):
        read_zip(buf.getvalue())


def test_read_zip_returns_member_bytes():
    f = render_klines("spot", "BTCUSDT", "1h", "2024-01-02")
    assert read_zip(f.zip) == f.csv
    assert read_zip(zip_csv(b"x\n", "y.csv")) == b"x\n"


ROW = "1704153600000,42000.10,42100.00,41900.00,42050.00,12.5,1704153659999,525000.0,100,6.0,252000.0,0"


@pytest.mark.parametrize("body,match", [
    (ROW + "\n" + ROW.rsplit(",", 1)[0] + "\n", "Expected 12 columns, got 11"),
    (ROW.replace("42100.00", "abc") + "\n", "invalid value 'abc'"),
    (ROW.replace(",100,", ",1.5,") + "\n", "invalid value '1.5'"),
    (ROW.replace(",12.5,", ",,") + "\n", "invalid value ''"),
    ("open_time,open,high,low,close,volume,close_time,quote_volume,trades,x,y,ignore\n" + ROW + "\n",
     "unexpected um klines header"),
    (ROW.replace("1704153600000", "-5") + "\n", "negative epoch"),
])
def test_malformed_csv_raises_parse_error_naming_the_problem(body, match):
    with pytest.raises(ParseError, match=match):
        parse_csv(body.encode(), "um", "klines", "archive_daily")


def test_bad_arguments():
    with pytest.raises(ParseError, match="unknown market 'eu'"):
        parse_csv(b"", "eu", "klines", "rest")
    with pytest.raises(ParseError, match="unknown source"):
        parse_csv(b"", "um", "klines", "s3")
    with pytest.raises(ParseError, match="market 'spot' has no 'metrics'"):
        parse_csv(b"", "spot", "metrics", "rest")
    with pytest.raises(ParseError, match="cannot parse data type 'EOHSummary'"):
        parse_csv(b"", "um", "EOHSummary", "rest")


def test_parse_error_names_the_file():
    key = ArchiveKey("um", "daily", "klines", "BTCUSDT", "1m", "2024-01-02")
    with pytest.raises(ParseError, match="data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-02.zip"):
        parse_file(zip_csv(b"1,2,3\n", key.filename[:-4] + ".csv"), key)


@pytest.mark.parametrize("market,data_type", PAIRS)
def test_silver_schema_exact_for_every_ingestible_pair(market, data_type):
    if data_type == "fundingRate":
        f = render_funding(market, "BTCUSD_PERP" if market == "cm" else "BTCUSDT", "2024-01")
    else:
        f = render_klines(market, "BTCUSDT", "1d", "2024-01", data_type=data_type)
    t = parse_file(f.zip, f.key)
    assert t.schema.equals(schema.silver_schema(market, data_type), check_metadata=True)
    times = t.column(schema.time_column(data_type))
    assert times.type == pa.timestamp("us", tz="UTC")
    assert np.all(np.diff(times.cast(pa.int64()).to_numpy()) > 0)

"""parse.py for aggTrades, trades, metrics, bookDepth, bookTicker, liquidationSnapshot: round
trips against the ArchiveBuilder's independent frames, the parsing gotchas of
docs/binance-archive.md §10 (one named test each, real rows quoted from the doc), and a
hypothesis fuzz over mutated real archive rows."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptolake import schema
from cryptolake.layout import ArchiveKey, parse_archive_key
from cryptolake.sources.parse import ParseError, dedupe_sort, parse_csv, parse_file
from cryptolake.testing.archive import ArchiveBuilder, render_funding, render_klines, zip_csv
from cryptolake.testing.archive_types import (render_agg_trades, render_book_depth,
                                              render_book_ticker, render_liquidation_snapshot,
                                              render_metrics, render_trades)

RENDER = {"aggTrades": render_agg_trades, "trades": render_trades, "metrics": render_metrics,
          "bookDepth": render_book_depth, "bookTicker": render_book_ticker,
          "liquidationSnapshot": render_liquidation_snapshot}
SYMBOL = {"spot": "BTCUSDT", "um": "BTCUSDT", "cm": "BTCUSD_PERP"}
NEW_TYPES = tuple(RENDER)
PAIRS = [(m, d) for m in schema.MARKETS for d in NEW_TYPES if d in schema.DATA_TYPES[m]]


def _check(table: pa.Table, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(table.to_pandas(), expected, check_exact=True)


def _key(market, data_type, period, symbol=None):
    cadence = "daily" if len(period) == 10 else "monthly"
    return ArchiveKey(market, cadence, data_type, symbol or SYMBOL[market], None, period)


def _parse_text(text: str, market: str, data_type: str, period: str = "2024-01-02"):
    key = _key(market, data_type, period)
    return parse_file(zip_csv(text.encode(), key.filename[:-4] + ".csv"), key)


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("market,data_type", PAIRS)
@pytest.mark.parametrize("period", ["2022-03-04", "2025-02-03"])
@pytest.mark.parametrize("dirty", [False, True])
def test_round_trip_every_type_and_market(market, data_type, period, dirty):
    kw = dict(duplicates=7, shuffle=True) if dirty else {}
    if data_type == "metrics" and dirty:
        kw.update(empty=[0, 5, 287], missing=[100])
    f = RENDER[data_type](market, SYMBOL[market], period, seed=3, **kw)
    t = parse_file(f.zip, f.key)
    assert t.schema.equals(schema.silver_schema(market, data_type), check_metadata=True)
    _check(t, f.frame)
    assert t.num_rows == len(f.frame) == f.rows_written - (7 if dirty else 0)
    tcol = t.column(schema.time_column(data_type))
    assert tcol.type == pa.timestamp("us", tz="UTC")
    first = pd.Timestamp(period, tz="UTC")
    assert tcol[0].as_py() >= first and tcol[-1].as_py() < first + pd.Timedelta(days=1)


@pytest.mark.parametrize("market,data_type", [(m, d) for m, d in PAIRS
                                               if schema.DATA_TYPES[m][d] == "dm"])
def test_monthly_files_round_trip(market, data_type):
    f = RENDER[data_type](market, SYMBOL[market], "2024-02", rows=3000, duplicates=3, seed=1)
    t = parse_file(f.zip, f.key)
    _check(t, f.frame)
    assert set(t.column("source").to_pylist()) == {"archive_monthly"}


def test_table_names_follow_the_contract():
    assert schema.table_name("spot", "aggTrades") == "spot_agg_trades"
    assert schema.table_name("um", "metrics") == "um_metrics"
    assert schema.table_name("cm", "liquidationSnapshot") == "cm_liquidation_snapshot"
    assert schema.table_name("um", "bookDepth") == "um_book_depth"
    assert schema.table_name("cm", "bookTicker") == "cm_book_ticker"
    assert schema.table_name("spot", "trades") == "spot_trades"
    for m, d in PAIRS:
        assert schema.parse_table_name(schema.table_name(m, d)) == (m, d, None)


def test_schemas_time_columns_and_keys():
    assert schema.time_column("aggTrades") == "transact_time"
    assert schema.time_column("trades") == "time"
    assert schema.time_column("metrics") == "create_time"
    assert schema.time_column("bookDepth") == "timestamp"
    assert schema.time_column("bookTicker") == "transaction_time"
    assert schema.time_column("liquidationSnapshot") == "time"
    assert schema.time_column("klines") == "open_time"
    assert schema.natural_key("aggTrades") == ("agg_trade_id",)
    assert schema.natural_key("trades") == ("id",)
    assert schema.natural_key("bookDepth") == ("timestamp", "percentage")
    assert schema.natural_key("markPriceKlines") == ("open_time",)
    assert schema.natural_key("liquidationSnapshot")[0] == "time"
    assert "is_best_match" in schema.silver_schema("spot", "trades").names
    assert "is_best_match" not in schema.silver_schema("um", "aggTrades").names
    assert "symbol" not in schema.METRICS_SCHEMA.names           # the partition column
    for m, d in PAIRS:
        sch = schema.silver_schema(m, d)
        assert sch.names[-1] == "source"
        assert sch.field(schema.time_column(d)).type == schema.TS
        assert set(schema.natural_key(d)) <= set(sch.names)
    assert "transact_time" not in schema.INGESTIBLE                # the lead wires new types
    for bad in (lambda: schema.silver_schema("spot", "metrics"),
                lambda: schema.natural_key("nope"), lambda: schema.time_column("nope"),
                lambda: schema.silver_schema("eu", "trades")):
        with pytest.raises(ValueError, match="allowed|has no"):
            bad()


@pytest.mark.parametrize("market,data_type", PAIRS)
def test_empty_and_header_only_files(market, data_type):
    target = schema.silver_schema(market, data_type)
    cols = [n for n in target.names if n != "source"]
    if data_type == "metrics":
        cols.insert(1, "symbol")
    for body in (b"", (",".join(cols) + "\n").encode()):
        t = parse_csv(body, market, data_type, "archive_daily")
        assert t.schema == target and t.num_rows == 0


# ---------------------------------------------------------------- gotchas (binance-archive.md §10)
def test_gotcha01_header_sniffed_per_file_never_by_first_field():
    # um aggTrades: headerless up to 2022-08-10, headered from 2022-08-11 (§3)
    old = render_agg_trades("um", "BTCUSDT", "2022-08-10")
    new = render_agg_trades("um", "BTCUSDT", "2022-08-11")
    assert not old.header and new.header
    _check(parse_file(old.zip, old.key), old.frame)
    _check(parse_file(new.zip, new.key), new.frame)
    # metrics/bookDepth rows start with a date string: a "first field numeric" test would take
    # the first data row of a headerless file for a header, and the header for data.
    for render in (render_metrics, render_book_depth):
        for header in (True, False):
            f = render("um", "BTCUSDT", "2024-05-19", header=header)
            assert f.csv[:1].isdigit() != header
            _check(parse_file(f.zip, f.key), f.frame)
    # a header naming some, not all, known columns is an error, not data
    bad = "timestamp,percentage,depth,notional_usd\n2025-05-19 11:07:31,-5,7885.275,647368074.3692\n"
    with pytest.raises(ParseError, match="unexpected um bookDepth header"):
        _parse_text(bad, "um", "bookDepth")


def test_gotcha02_spot_microseconds_from_2025_futures_milliseconds():
    ms = render_trades("spot", "BTCUSDT", "2024-12-31", rows=50)
    us = render_trades("spot", "BTCUSDT", "2025-01-01", rows=50)
    fut = render_trades("um", "BTCUSDT", "2025-01-01", rows=50)
    assert (ms.unit, us.unit, fut.unit) == ("ms", "us", "ms")
    assert len(us.csv.split(b"\n")[0].split(b",")[4]) == 16
    for f in (ms, us, fut):
        _check(parse_file(f.zip, f.key), f.frame)
    # the doc's real µs spot rows, and a per-value mix in one file
    text = ("0,0.20000000,50.00000000,0,0,1735689600010866,False,True\n"
            "1,0.20000000,50.00000000,1,1,1735689600011,False,True\n")
    df = _parse_text(text, "spot", "aggTrades", "2025-01-01").to_pandas()
    assert list(df.transact_time) == [pd.Timestamp("2025-01-01 00:00:00.010866", tz="UTC"),
                                      pd.Timestamp("2025-01-01 00:00:00.011", tz="UTC")]


def test_gotcha03_close_time_kept_as_written_even_when_truncated():
    # BTCUSDT-1h-2018-01 has close_time 1515034814838 (not ...399999) and an open_time off the
    # hour (#77): silver keeps what the file says; nothing derives close_time from open_time.
    text = ("1515031200000,15000.0,15100.0,14900.0,15050.0,10.0,1515034814838,150000.0,100,5.0,75000.0,0\n"
            "1518168494789,8000.0,8100.0,7900.0,8050.0,10.0,1518170399999,80000.0,100,5.0,40000.0,0\n")
    key = ArchiveKey("spot", "monthly", "klines", "BTCUSDT", "1h", "2018-01")
    df = parse_file(zip_csv(text.encode(), key.filename[:-4] + ".csv"), key).to_pandas()
    assert df.close_time.iloc[0] == pd.Timestamp(1515034814838, unit="ms", tz="UTC")
    assert df.open_time.iloc[1] == pd.Timestamp(1518168494789, unit="ms", tz="UTC")
    assert df.close_time.iloc[1] - df.open_time.iloc[1] != pd.Timedelta(hours=1) - pd.Timedelta("1ms")


def test_gotcha04_coin_m_trades_carry_base_qty_in_coin_and_qty_in_contracts():
    # real cm row: qty = contracts (83), base_qty = coin (0.10569734) (§4.5)
    df = _parse_text("id,price,qty,base_qty,time,is_buyer_maker\n"
                     "1151022504,78526.1,83.0,0.10569734,1788220802731,true\n",
                     "cm", "trades", "2026-09-01").to_pandas()
    assert list(df.columns) == ["id", "price", "qty", "base_qty", "time", "is_buyer_maker", "source"]
    assert (df.qty.iloc[0], df.base_qty.iloc[0]) == (83.0, 0.10569734)
    assert "quote_qty" not in df and "base_qty" not in schema.silver_schema("um", "trades").names
    f = render_trades("cm", "BTCUSD_PERP", "2024-01-05", rows=100)
    df = parse_file(f.zip, f.key).to_pandas()
    # 100 USD contracts: coin value = contracts * 100 / price (8 decimals, floored)
    assert np.allclose(df.base_qty, df.qty * 100 / df.price, rtol=0, atol=1e-8)


def test_gotcha09_duplicates_and_interleaved_rows_real_shapes():
    # um monthly 2022-09 duplicates (#203) and 2023-05 interleaved rows (#339), verbatim
    text = ("1446230265,21820.30,1.614,2815718001,2815718002,1662940800166,true\n"
            "1446230265,21820.30,1.614,2815718001,2815718002,1662940800166,true\n"
            "1446230266,21820.40,0.018,2815718003,2815718003,1662940800200,false\n"
            "1715206948,29223.0,0.639,3643221425,3643221428,1682899200101,false\n"
            "1750606761,27540.0,0.785,3764656132,3764656133,1685463466083,true\n"
            "1715206949,29223.2,0.343,3643221429,3643221430,1682899200129,false\n")
    df = _parse_text(text, "um", "aggTrades", "2022-09").to_pandas()
    assert list(df.agg_trade_id) == [1446230265, 1446230266, 1715206948, 1715206949, 1750606761]
    # liquidationSnapshot doubled rows (§4.10), verbatim
    liq = ("time,side,order_type,time_in_force,original_quantity,price,average_price,order_status,"
           "last_fill_quantity,accumulated_fill_quantity\n"
           "1687656471926,BUY,LIMIT,IOC,7,30741.3,30631.6,FILLED,6,7\n"
           "1687656471926,BUY,LIMIT,IOC,7,30741.3,30631.6,FILLED,6,7\n"
           "1687656473356,BUY,LIMIT,IOC,43,30756.6,30631.6,FILLED,1,43\n")
    df = _parse_text(liq, "cm", "liquidationSnapshot", "2023-06-25").to_pandas()
    assert len(df) == 2 and list(df.original_quantity) == [7, 43]
    # metrics 2020-09..2021-05: every row doubled; a shuffled monthly aggTrades file
    f = render_metrics("um", "BTCUSDT", "2020-10-01", duplicates="all")
    assert f.rows_written == 2 * 288
    _check(parse_file(f.zip, f.key), f.frame)
    f = render_agg_trades("um", "BTCUSDT", "2023-05", rows=5000, interleave=40, duplicates=25)
    _check(parse_file(f.zip, f.key), f.frame)


def test_gotcha09_liquidations_sharing_an_instant_are_not_duplicates():
    liq = ("time,side,order_type,time_in_force,original_quantity,price,average_price,order_status,"
           "last_fill_quantity,accumulated_fill_quantity\n"
           "1687656471926,SELL,LIMIT,IOC,7,30741.3,30631.6,FILLED,6,7\n"
           "1687656471926,BUY,LIMIT,IOC,7,30741.3,30631.6,FILLED,6,7\n")
    df = _parse_text(liq, "cm", "liquidationSnapshot", "2023-06-25").to_pandas()
    assert list(df.side) == ["BUY", "SELL"]                 # both kept, sorted by key
    f = render_liquidation_snapshot("cm", "BTCUSD_PERP", "2024-01-01", same_instant=30)
    df = parse_file(f.zip, f.key).to_pandas()
    assert df.time.duplicated().sum() >= 30 and len(df) == 300


def test_gotcha11_booleans_in_either_case():
    spot = "51175358,17.80180000,5.69000000,101.29224200,1735689600010866,True,True\n" \
           "51175359,17.80180000,5.69000000,101.29224200,1735689600010867,False,True\n"
    um = "id,price,qty,quote_qty,time,is_buyer_maker\n" \
         "51254697,9.96,18.8,187.248,1617840001352,false\n5053880937,68402.6,0.024,1641.6624,1717113600031,TRUE\n"
    a = _parse_text(spot, "spot", "trades", "2025-01-01").to_pandas()
    b = _parse_text(um, "um", "trades", "2021-04-08").to_pandas()
    assert list(a.is_buyer_maker) == [True, False] and a.is_best_match.all()
    assert list(b.is_buyer_maker) == [False, True]
    with pytest.raises(ParseError, match="invalid value 'yes'"):
        _parse_text(um.replace("false", "yes"), "um", "trades")


def test_gotcha11_metrics_empty_strings_are_null_not_zero():
    text = ("create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
            "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio\n"
            '2023-06-25 00:00:00,BTCUSD_PERP,5578700.00000000,18265.00911826,"","","",0.00855776\n'
            "2023-06-25 00:05:00,BTCUSD_PERP,5578209.00000000,18261.90678854,,,,1.19645130\n")
    t = _parse_text(text, "cm", "metrics", "2023-06-25")
    for c in ("count_toptrader_long_short_ratio", "sum_toptrader_long_short_ratio",
              "count_long_short_ratio"):
        assert t.column(c).null_count == 2
    assert t.column("sum_taker_long_short_vol_ratio").to_pylist() == [0.00855776, 1.1964513]
    assert t.column("create_time").to_pylist()[1] == pd.Timestamp("2023-06-25 00:05", tz="UTC")
    # an empty time is an error, never a null or zero time
    with pytest.raises(ParseError, match="create_time.*empty"):
        _parse_text(text.replace("2023-06-25 00:05:00", ""), "cm", "metrics", "2023-06-25")


def test_metrics_symbol_must_be_the_files():
    f = render_metrics("um", "BTCUSDT", "2024-01-01")
    key = ArchiveKey("um", "daily", "metrics", "ETHUSDT", None, "2024-01-01")
    with pytest.raises(ParseError, match="not the file's 'ETHUSDT'"):
        parse_file(f.zip, key)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 10**16 - 1)), min_size=1, max_size=20))
def test_gotcha12_sixteen_decimal_metrics_parse_to_the_nearest_double(values):
    """Ratios with up to 16 decimals and values padded with 16 zeros land on the correctly
    rounded float64 (Python's float() of the same string), never a twice-rounded one."""
    rows, want = [], []
    for i, (a, b) in enumerate(values):
        s = f"{a}.{b:016d}"
        rows.append(f"2022-01-01 {i // 12:02d}:{i % 12 * 5:02d}:00,BTCUSDT,{a}{b % 1000}.0000000000000000,"
                    f"{s},{s},{s},{s},{s}")
        want.append(float(s))
    t = _parse_text("\n".join(rows) + "\n", "um", "metrics", "2022-01-01")
    for c in schema.METRICS_SCHEMA.names[2:-1]:
        assert t.column(c).to_pylist() == want


def test_gotcha14_rest_milliseconds_and_archive_microseconds_meet():
    us = render_agg_trades("spot", "BTCUSDT", "2025-03-01", rows=40, unit="us")
    ms_text = "\n".join(
        ",".join(p if i != 5 else str(int(p) // 1000) for i, p in enumerate(line.split(",")))
        for line in us.csv.decode().splitlines()) + "\n"
    a = parse_file(us.zip, us.key)
    b = parse_csv(ms_text.encode(), "spot", "aggTrades", "rest")
    want = a.column("transact_time").cast(pa.int64()).to_numpy() // 1000 * 1000
    assert np.array_equal(b.column("transact_time").cast(pa.int64()).to_numpy(), want)
    assert set(b.column("source").to_pylist()) == {"rest"}


def test_gotcha19_junk_objects_are_not_data_files():
    b = ArchiveBuilder("memory://gotcha19")
    d = b.symbol_dir("um", "monthly", "aggTrades", "BTCUSDT")
    junk = b.junk(d)
    assert parse_archive_key(junk) is None
    assert parse_archive_key("data/spot/monthly/klines/ADABKRW/1d/ADABKRW-1d-2020-8.zip") is None
    # were one fed to the parser anyway, it fails loudly rather than yielding rows
    data = b.fs.cat_file(b.path(junk))
    with pytest.raises(ParseError, match="Expected 7 columns"):
        parse_file(data, _key("um", "aggTrades", "2024-01"))


def test_gotcha20_funding_jitter_and_intervals_kept_as_written():
    text = ("calc_time,funding_interval_hours,last_funding_rate\n"
            "1775088000003,8,0.00003521\n1775102400011,4,-0.00000461\n1775106000000,1,0.00000577\n")
    key = ArchiveKey("um", "monthly", "fundingRate", "BTCUSDT", None, "2026-04")
    df = parse_file(zip_csv(text.encode(), key.filename[:-4] + ".csv"), key).to_pandas()
    assert list(df.funding_time.astype("int64")) == [1775088000003000, 1775102400011000, 1775106000000000]
    assert list(df.funding_interval_hours) == [8, 4, 1]


# ---------------------------------------------------------------- other bad input
@pytest.mark.parametrize("data_type,text,match", [
    ("aggTrades", "1,2.0,3.0,4,5,1704153600000\n", "Expected 7 columns, got 6"),
    ("aggTrades", "1,2.0,3.0,4,5,1704153600000,maybe\n", "invalid value 'maybe'"),
    ("aggTrades", "1,2.0,3.0,4,5,17041536,true\n", "outside 2000-01-01"),
    ("trades", "1,2.0,3.0,6.0,99999999999999999,true\n", "outside 2000-01-01"),
    ("bookDepth", "timestamp,percentage,depth,notional\nyesterday,-5,1.0,2.0\n", "invalid value 'yesterday'"),
    ("bookTicker", "1,2,3,4,5,,1704153600000\n", "column #5.*invalid value ''"),
    ("liquidationSnapshot", "1704153600000,BUY,LIMIT,IOC,x,1,1,FILLED,1,1\n", "invalid value 'x'"),
])
def test_malformed_rows_raise_parse_error(data_type, text, match):
    market = "cm" if data_type == "liquidationSnapshot" else "um"
    with pytest.raises(ParseError, match=match):
        _parse_text(text, market, data_type)


def test_conflicting_duplicate_id_keeps_first_row_in_file_order():
    text = ("5,100.0,1.0,9,9,1704153600000,true\n"
            "4,100.0,1.0,8,8,1704153600000,true\n"
            "5,999.0,2.0,9,9,1704153600001,false\n")
    df = _parse_text(text, "um", "aggTrades").to_pandas()
    assert list(df.agg_trade_id) == [4, 5] and list(df.price) == [100.0, 100.0]


def test_dedupe_sort_counts_and_fast_path():
    f = render_book_ticker("um", "BTCUSDT", "2024-01-01", rows=500, duplicates=9, shuffle=True)
    t = parse_file(f.zip, f.key)
    same, dropped = dedupe_sort(t, "bookTicker")
    assert same is t and dropped == 0                         # already unique and sorted
    doubled = pa.concat_tables([t, t.slice(0, 9)])
    out, dropped = dedupe_sort(doubled, "bookTicker")
    assert dropped == 9 and out.equals(t)


# ---------------------------------------------------------------- fuzz: mutated real rows
_REAL = {
    "spot/klines": "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-08.zip",
    "um/fundingRate": "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2026-04.zip",
    "cm/aggTrades": "data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip",
}


@pytest.fixture(scope="module")
def real_lines(real_archive_dir):
    out = {}
    for name, k in _REAL.items():
        with zipfile.ZipFile(io.BytesIO((real_archive_dir / k).read_bytes())) as zf:
            lines = zf.read(zf.namelist()[0]).split(b"\n")
        out[name] = (parse_archive_key(k), lines[:25])
    return out


_NOISE = st.sampled_from([b"", b",", b"\"", b"\"\"", b"-", b"1e308", b"NaN", b"true", b"True",
                          b"\xff\xfe", b"\r", b"\n", b"9" * 20, b"-1", b"0", b" ", b"abc",
                          b"2024-01-01 00:00:00", b"agg_trade_id", b"open_time", b"\x00"])


@st.composite
def _mutations(draw):
    return draw(st.lists(st.tuples(
        st.sampled_from(["replace_field", "insert", "delete", "drop_field", "dup_line",
                         "swap", "truncate", "case", "dup_field"]),
        st.integers(0, 10**6), st.integers(0, 10**6), _NOISE), min_size=1, max_size=4))


def _mutate(lines: list[bytes], muts) -> bytes:
    lines = list(lines)
    for op, i, j, noise in muts:
        li = i % len(lines)
        fields = lines[li].split(b",")
        fi = j % len(fields)
        if op == "replace_field":
            fields[fi] = noise
        elif op == "drop_field":
            fields.pop(fi)
        elif op == "dup_field":
            fields.insert(fi, fields[fi])
        elif op == "case":
            fields[fi] = fields[fi].swapcase()
        if op in ("replace_field", "drop_field", "dup_field", "case"):
            lines[li] = b",".join(fields)
        elif op == "insert":
            pos = j % (len(lines[li]) + 1)
            lines[li] = lines[li][:pos] + noise + lines[li][pos:]
        elif op == "delete":
            pos = j % (len(lines[li]) + 1)
            lines[li] = lines[li][:pos] + lines[li][pos + 1 + j % 7:]
        elif op == "dup_line":
            lines.insert(li, lines[li])
        elif op == "swap":
            lk = j % len(lines)
            lines[li], lines[lk] = lines[lk], lines[li]
        elif op == "truncate":
            lines = lines[: li + 1]
            lines[-1] = lines[-1][: j % (len(lines[-1]) + 1)]
    return b"\n".join(lines)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(sorted(_REAL)), muts=_mutations(), zipped=st.booleans())
def test_fuzz_mutated_real_rows_parse_or_raise_parse_error(real_lines, which, muts, zipped):
    key, lines = real_lines[which]
    csv = _mutate(lines, muts)
    try:
        if zipped:
            t = parse_file(zip_csv(csv, key.filename[:-4] + ".csv"), key)
        else:
            t = parse_csv(csv, key.market, key.data_type, "archive_daily")
    except ParseError:
        return
    assert t.schema == schema.silver_schema(key.market, key.data_type)
    times = t.column(schema.time_column(key.data_type)).cast(pa.int64()).to_numpy()
    assert np.all(np.diff(times) >= 0)
    assert t.to_pandas().shape[0] == t.num_rows               # readable by pandas too


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(muts=_mutations(), batch=st.integers(1, 30))
def test_fuzz_streamed_aggtrades_parse_or_raise_parse_error(real_lines, muts, batch):
    from cryptolake.sources.stream import iter_parse
    key, lines = real_lines["cm/aggTrades"]
    data = zip_csv(_mutate(lines, muts), key.filename[:-4] + ".csv")
    try:
        tables = list(iter_parse(data, key, batch_rows=batch))
    except ParseError:
        return
    for t in tables:
        assert t.schema == schema.silver_schema("cm", "aggTrades")

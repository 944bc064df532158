"""BinanceREST through ccxt against a real HTTP server speaking Binance's REST shapes
(cryptolake.testing.rest_server.FakeBinance on 127.0.0.1). Nothing is mocked: ccxt sends real
requests, the server answers (or fails) like Binance, and every request is logged.

Gotchas of docs/binance-archive.md §10 covered here: 6 (test_gotcha6_*), 13 (test_gotcha13_*),
14 (test_gotcha14_*), 15 (test_gotcha15_*), 16 (test_gotcha16_*).
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import pickle
import socket
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

import cryptolake as cl
from cryptolake import schema
from cryptolake.sources.parse import parse_file
from cryptolake.sources.rest import (BinanceREST, days_with_data, page_key, parse_page_key,
                                     parse_pages)
from cryptolake.testing.archive import ArchiveBuilder
from cryptolake.testing.rest_server import DAPI_WINDOW_MS, FakeBinance, funding_rows, kline_rows

SYM = {"spot": "BTCUSDT", "um": "BTCUSDT", "cm": "BTCUSD_PERP"}
D1, D2 = "2024-03-01", "2024-03-02"
LATER = "2024-03-10"                    # a `now` after every seeded bar closed
MS = 60_000


def ms(t) -> int:
    t = pd.Timestamp(t)
    return int((t if t.tzinfo else t.tz_localize("UTC")).value // 1_000_000)


def expected_klines(market: str, rows: list) -> pd.DataFrame:
    """The silver frame a correct parser must give for seeded REST rows (independent of it)."""
    vol = (["volume", "base_volume", "taker_buy_volume", "taker_buy_base_volume"] if market == "cm"
           else ["volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume"])
    cols = ["open_time", "open", "high", "low", "close", vol[0], "close_time", vol[1], "trades",
            vol[2], vol[3], "ignore"]
    df = pd.DataFrame(rows, columns=cols).drop(columns="ignore")
    for c in ("open_time", "close_time"):
        df[c] = pd.to_datetime(df[c], unit="ms", utc=True).astype("datetime64[us, UTC]")
    for c in ("open", "high", "low", "close", *vol):
        df[c] = df[c].map(lambda s: float(s))
    df["trades"] = df["trades"].astype("int64")
    df["source"] = "rest"
    return df


def seeded(*keys_days) -> dict:
    """{(market, data_type, symbol, interval): rows} for kline keys over [first, last) days."""
    out = {}
    for market, data_type, interval, first, last in keys_days:
        out[(market, data_type, SYM[market], interval)] = kline_rows(
            market, SYM[market], interval, first, last, data_type=data_type)
    return out


@functools.lru_cache(maxsize=1)
def _seed() -> dict:
    """The server's rows, generated once per session (the server copies them on `add`)."""
    rows = seeded(("spot", "klines", "1m", D1, "2024-03-03"), ("um", "klines", "1m", D1, "2024-03-03"),
                  ("cm", "klines", "1m", D1, "2024-03-03"), ("um", "klines", "1h", D1, "2024-03-05"),
                  ("spot", "klines", "1mo", "2024-01-01", "2024-04-01"),
                  ("cm", "klines", "1d", "2024-01-01", "2024-03-01"))
    for market in ("um", "cm"):
        for t in ("markPriceKlines", "indexPriceKlines", "premiumIndexKlines"):
            rows[(market, t, SYM[market], "1h")] = kline_rows(market, SYM[market], "1h", D1, "2024-03-03",
                                                              data_type=t)
        rows[(market, "fundingRate", SYM[market], None)] = funding_rows(market, SYM[market], D1, "2024-03-04",
                                                                        jitter_ms=13)
    rows[("um", "klines", "ETHUSDT", "1h")] = kline_rows("um", "ETHUSDT", "1h", D1, "2024-03-03")
    return rows


@pytest.fixture
def server():
    with FakeBinance(_seed()) as srv:
        yield srv


def rest(server, **kw) -> BinanceREST:
    kw.setdefault("rate_limit", False)
    kw.setdefault("backoff", 0.01)
    return BinanceREST(server.url, **kw)


# ---------------------------------------------------------------- columns and shapes
@pytest.mark.parametrize("market", ["spot", "um", "cm"])
def test_all_twelve_kline_fields_land_in_silver(server, market):
    got = rest(server).klines(market, "klines", SYM[market], "1m", D1, D1, now=LATER)
    assert got.ok and not got.rejected
    seeded_rows = [r for r in server.rows[(market, "klines", SYM[market], "1m")] if r[0] < ms(D2)]
    exp = expected_klines(market, seeded_rows)
    assert got.table.schema == schema.silver_schema(market, "klines")
    pd.testing.assert_frame_equal(got.table.to_pandas(), exp)
    assert len(exp) == 1440
    if market == "cm":       # COIN-M names its volumes for what they hold (contract)
        assert {"base_volume", "taker_buy_base_volume"} <= set(got.table.column_names)
        assert "quote_volume" not in got.table.column_names


def test_gotcha16_raw_methods_keep_all_columns_and_futures_pages_exceed_1000(server):
    """fetch_ohlcv would keep 6 of 12 fields and cap futures requests at 1000 rows."""
    got = rest(server).klines("um", "klines", "BTCUSDT", "1m", D1, D1, now=LATER)
    hits = server.hits("/fapi/v1/klines")
    assert len(hits) == 1 and hits[0].int("limit") == 1440          # one request, > 1000
    assert got.table.num_rows == 1440
    t = got.table.to_pandas()
    assert (t["trades"] > 0).any() and (t["quote_volume"] > 0).any() and (t["taker_buy_volume"] > 0).any()


@pytest.mark.parametrize("market", ["um", "cm"])
@pytest.mark.parametrize("data_type", ["markPriceKlines", "indexPriceKlines", "premiumIndexKlines"])
def test_price_kline_types_use_their_paths(server, market, data_type):
    got = rest(server).klines(market, data_type, SYM[market], "1h", D1, D2, now=LATER)
    assert got.ok, got.errors
    api = {"um": "/fapi/v1/", "cm": "/dapi/v1/"}[market]
    hits = server.hits(api + data_type)
    assert len(hits) == 2
    if data_type == "indexPriceKlines":                # index klines are asked by pair
        assert all(h.query["pair"] == SYM[market].split("_")[0] and "symbol" not in h.query for h in hits)
    exp = expected_klines(market, server.rows[(market, data_type, SYM[market], "1h")])
    pd.testing.assert_frame_equal(got.table.to_pandas(), exp)
    if data_type == "premiumIndexKlines":
        assert (got.table.column("low").to_numpy() < 0).any()      # signed values survive


# ---------------------------------------------------------------- paging, windows, closed candles
def test_spot_pages_a_day_within_its_1000_row_limit(server):
    got = rest(server).klines("spot", "klines", "BTCUSDT", "1m", D1, D2, now=LATER)
    hits = server.hits("/api/v3/klines")
    assert [h.int("limit") for h in hits] == [1000, 440, 1000, 440]
    assert all(h.int("limit") <= 1000 for h in hits)
    # contiguous windows: each page starts right after the previous page's last bar
    assert hits[1].int("startTime") == ms(D1) + 999 * MS + 1
    assert hits[1].int("endTime") == ms(D2) - 1
    t = got.table.column("open_time").to_pandas()
    assert len(t) == 2880 and t.is_unique and t.is_monotonic_increasing
    assert [name for name, _ in got.pages] == [page_key("spot", "klines", "BTCUSDT", "1m", d) for d in (D1, D2)]


def test_gotcha15_dapi_never_sends_starttime_alone_and_pages_backwards(server):
    """COIN-M answers the most recent `limit` rows ending at endTime, in windows <= 200 days."""
    got = rest(server, page_limit=500).klines("cm", "klines", "BTCUSD_PERP", "1m", D1, D2, now=LATER)
    hits = server.hits("/dapi/v1/klines")
    assert all("startTime" in h.query and "endTime" in h.query for h in hits)
    assert all(h.int("endTime") - h.int("startTime") <= DAPI_WINDOW_MS for h in hits)
    assert [h.int("limit") for h in hits] == [500, 500, 440] * 2
    assert hits[1].int("endTime") == ms(D1) + 940 * MS - 1          # below the first page's oldest bar
    rows = server.rows[("cm", "klines", "BTCUSD_PERP", "1m")]
    exp = expected_klines("cm", [r for r in rows if r[0] < ms("2024-03-03")])
    pd.testing.assert_frame_equal(got.table.to_pandas(), exp)


def test_gotcha15_dapi_long_range_of_daily_bars(server):
    got = rest(server).klines("cm", "klines", "BTCUSD_PERP", "1d", "2024-01-01", "2024-02-29", now=LATER)
    hits = server.hits("/dapi/v1/klines")
    assert len(hits) == 60 and got.table.num_rows == 60
    assert all(0 <= h.int("endTime") - h.int("startTime") <= DAPI_WINDOW_MS for h in hits)


def test_fake_dapi_models_the_starttime_only_quirk(server):
    """What gotcha 15 guards against, shown on the server: startTime alone does not return
    rows from startTime, and windows over 200 days are refused."""
    base = f"{server.url}/dapi/v1/klines?symbol=BTCUSD_PERP&interval=1d&limit=5"
    with urllib.request.urlopen(f"{base}&startTime={ms('2024-01-01')}") as r:
        rows = json.loads(r.read())
    assert rows[0][0] != ms("2024-01-01") and rows[-1][0] == ms("2024-02-29")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{base}&startTime=0&endTime={ms('2024-01-01')}")
    assert e.value.code == 400 and json.loads(e.value.read())["code"] == -1127


def test_gotcha13_only_closed_candles(server):
    now = pd.Timestamp("2024-03-02 12:00:30", tz="UTC")
    got = rest(server).klines("um", "klines", "BTCUSDT", "1m", D1, LATER, now=now)
    t = got.table.column("open_time").to_pandas()
    assert t.iloc[-1] == pd.Timestamp("2024-03-02 11:59", tz="UTC")
    assert (got.table.column("close_time").to_pandas() < now).all()
    assert len(t) == 1440 + 720
    hits = server.hits("/fapi/v1/klines")
    assert len(hits) == 2                                     # no request for days after now
    assert max(h.int("endTime") for h in hits) < ms("2024-03-02 12:00")   # open bar never asked


def test_gotcha13_open_candle_dropped_even_when_the_server_sends_it(server):
    now = pd.Timestamp("2024-03-02 12:00:30", tz="UTC")
    open_bar = next(r for r in server.rows[("um", "klines", "BTCUSDT", "1m")] if r[0] == ms(now.floor("min")))
    server.mutate(lambda rows: rows + [open_bar], path="/fapi/v1/klines", times=5)
    got = rest(server).klines("um", "klines", "BTCUSDT", "1m", D2, D2, now=now)
    assert got.table.num_rows == 720
    assert b"%d," % open_bar[0] in got.pages[0][1]            # bronze keeps the body as received


def test_gotcha6_interval_1mo_is_sent_as_1M(server):
    got = rest(server).klines("spot", "klines", "BTCUSDT", "1mo", "2024-01-01", "2024-03-31", now="2024-04-02")
    hits = server.hits("/api/v3/klines")
    assert [h.query["interval"] for h in hits] == ["1M"] * 3           # only month starts asked
    assert [h.int("startTime") for h in hits] == [ms("2024-01-01"), ms("2024-02-01"), ms("2024-03-01")]
    assert got.table.num_rows == 3 and got.ok
    assert got.pages[0][0] == "rest/spot/klines/BTCUSDT/1mo/BTCUSDT-1mo-2024-01-01.json"
    # and the server, like Binance, refuses the archive spelling
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{server.url}/api/v3/klines?symbol=BTCUSDT&interval=1mo")
    assert json.loads(e.value.read())["code"] == -1120


def test_gotcha14_rest_ms_lands_on_the_archive_us_instants(tmp_path):
    """Spot archive files from 2025 carry µs; REST carries ms. Both become the same instants."""
    b = ArchiveBuilder(f"file://{tmp_path}")
    key = b.klines("spot", "BTCUSDT", "1m", "2025-01-02")
    assert b.file(key).unit == "us"
    archive = parse_file(b.file(key).zip, key).to_pandas()
    rows = kline_rows("spot", "BTCUSDT", "1m", "2025-01-02", "2025-01-03")
    with FakeBinance({("spot", "klines", "BTCUSDT", "1m"): rows}) as srv:
        ms_table = rest(srv).klines("spot", "klines", "BTCUSDT", "1m", "2025-01-02", "2025-01-02",
                                    now="2025-01-05").table.to_pandas()
        # a server answering in µs (X-MBX-TIME-UNIT: MICROSECOND) gives the same instants
        srv.mutate(lambda rs: [[r[0] * 1000, *r[1:6], r[6] * 1000 + 999, *r[7:]] for r in rs], times=10)
        us_table = rest(srv).klines("spot", "klines", "BTCUSDT", "1m", "2025-01-02", "2025-01-02",
                                    now="2025-01-05").table.to_pandas()
    for col in ("open_time", "close_time"):
        pd.testing.assert_series_equal(ms_table[col], archive[col])
        pd.testing.assert_series_equal(us_table[col], archive[col])
    assert ms_table["open_time"].iloc[0] == pd.Timestamp("2025-01-02", tz="UTC")


# ---------------------------------------------------------------- retries and failures
def test_429_waits_for_retry_after(server):
    server.fail(429, retry_after=1)
    got = rest(server, backoff=0.01).klines("um", "klines", "BTCUSDT", "1h", D1, D1, now=LATER)
    assert got.ok and got.table.num_rows == 24
    hits = server.hits("/fapi/v1/klines")
    assert [h.status for h in hits] == [429, 200]
    assert hits[1].t - hits[0].t >= 1.0          # the retry came after Retry-After, not the 0.01 s backoff
    assert got.requests == 2


@pytest.mark.parametrize("status", [418, 500, 503])
def test_418_and_5xx_back_off_then_succeed(server, status):
    server.fail(status, times=2)
    got = rest(server, backoff=0.2).klines("um", "klines", "BTCUSDT", "1h", D1, D1, now=LATER)
    assert got.ok and got.table.num_rows == 24
    hits = server.hits("/fapi/v1/klines")
    assert [h.status for h in hits] == [status, status, 200]
    assert hits[1].t - hits[0].t >= 0.2 and hits[2].t - hits[1].t >= 0.4      # exponential


def test_retries_are_bounded(server):
    server.fail(503, times=50)
    got = rest(server, retries=2).klines("um", "klines", "BTCUSDT", "1h", D1, D2, now=LATER)
    assert len(server.hits("/fapi/v1/klines")) == 3
    assert len(got.errors) == 1 and "failed after 3 tries" in got.errors[0]
    assert "2024-03-01..2024-03-02 not fetched" in got.errors[0]
    assert got.table.num_rows == 0 and got.pages == []


def test_ban_longer_than_max_wait_gives_up_at_once(server):
    server.fail(418, retry_after=7200)
    got = rest(server).klines("um", "klines", "BTCUSDT", "1h", D1, D1, now=LATER)
    assert len(server.hits("/fapi/v1/klines")) == 1
    assert "asks to wait 7200 s" in got.errors[0]


def test_hang_times_out_then_retries(server):
    server.hang(30.0)                                               # woken at teardown
    got = rest(server, timeout=1.0).klines("um", "klines", "BTCUSDT", "1h", D1, D1, now=LATER)
    assert got.ok and got.table.num_rows == 24
    hits = server.hits("/fapi/v1/klines")
    assert hits[0].body is None and hits[-1].status == 200          # timed out, retried, answered


def test_unknown_symbol_is_a_per_symbol_error(server):
    src = rest(server)
    results = {s: src.klines("um", "klines", s, "1h", D1, D1, now=LATER)
               for s in ("BTCUSDT", "NOPEUSDT", "ethusdt")}
    results["ETHUSDT"] = results.pop("ethusdt")                   # symbols are upper-cased
    assert results["BTCUSDT"].ok and results["ETHUSDT"].ok
    assert results["ETHUSDT"].table.num_rows == 24
    err = results["NOPEUSDT"].errors
    assert len(err) == 1 and "NOPEUSDT" in err[0] and "-1121" in err[0]
    assert len(server.hits("/fapi/v1/klines")) == 3        # BadSymbol is not retried


def test_unreachable_endpoint_is_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got = BinanceREST(f"http://127.0.0.1:{port}", retries=1, backoff=0.01, rate_limit=False).klines(
        "um", "klines", "BTCUSDT", "1h", D1, D2, now=LATER)
    assert len(got.errors) == 1 and "failed after 2 tries" in got.errors[0] and "NetworkError" in got.errors[0]
    assert got.table.num_rows == 0 and got.pages == []


def test_credentials_in_the_endpoint_stay_out_of_messages(server):
    host = server.url.split("//")[1]
    src = BinanceREST(f"http://reader:s3cr3t@{host}", rate_limit=False, retries=0)
    got = src.klines("um", "klines", "NOPEUSDT", "1h", D1, D1, now=LATER)
    assert got.errors and not any("s3cr3t" in e for e in got.errors)
    assert "s3cr3t" not in repr(src) and "s3cr3t" not in (src.endpoint or "")
    assert server.requests[-1].auth.startswith("Basic ")       # sent as basic auth


def test_malformed_rows_are_rejected_whole_with_reasons(server):
    def corrupt(rows):
        rows[3] = ["x"]
        rows[5][0] = "abc"
        rows[7][2] = "NaN"
        rows[9][3] = "999999999"                                # low above high
        rows[11] = rows[11][:11]
        return rows
    good = rest(server).klines("um", "klines", "BTCUSDT", "1h", D1, D1, now=LATER)
    assert not good.rejected
    server.mutate(corrupt, path="/fapi/v1/klines")
    got = rest(server).klines("um", "klines", "BTCUSDT", "1h", D1, D1, now=LATER)
    reasons = {r["index"]: r["reason"] for r in got.rejected}
    assert sorted(reasons) == [3, 5, 7, 9, 11]
    assert "12 fields" in reasons[3] and "open_time" in reasons[5] and "high" in reasons[7]
    assert "low" in reasons[9] and "12 fields" in reasons[11]
    assert got.table.num_rows == 19
    kept = set(got.table.column("open_time").to_pandas())
    bad = set(good.table.column("open_time").to_pandas().iloc[[3, 5, 7, 9, 11]])
    assert not kept & bad                                       # nothing partial


def test_a_body_that_is_not_json_is_rejected(server):
    server.mutate(lambda rows: "<html>gateway error</html>", path="/fapi/v1/klines")
    got = rest(server).klines("um", "klines", "BTCUSDT", "1h", D1, D2, now=LATER)
    assert got.table.num_rows == 24                             # the other day is intact
    assert len(got.rejected) == 1 and got.rejected[0]["index"] is None


def test_duplicate_and_out_of_day_rows(server):
    other_day = server.rows[("um", "klines", "BTCUSDT", "1h")][30]
    server.mutate(lambda rows: rows + rows[:3] + [other_day], path="/fapi/v1/klines")
    got = rest(server).klines("um", "klines", "BTCUSDT", "1h", D1, D1, now=LATER)
    assert got.table.num_rows == 24 and got.table.column("open_time").to_pandas().is_unique
    assert len(got.rejected) == 1 and "outside the page's day" in got.rejected[0]["reason"]


def test_no_exchange_info_request_ever(server):
    src = BinanceREST(server.url)                               # default rate limiting on
    for market in ("spot", "um", "cm"):
        assert src.klines(market, "klines", SYM[market], "1m", D1, D1, now=LATER).ok
    for market in ("um", "cm"):
        assert src.funding(market, SYM[market], D1, D2, now=LATER).ok
    assert server.requests and not any("exchangeInfo" in p for p in server.paths())


# ---------------------------------------------------------------- funding
def test_funding_um_carries_mark_price_and_intervals(server):
    got = rest(server).funding("um", "BTCUSDT", D1, D2, now=LATER)
    seeded_rows = [r for r in server.rows[("um", "fundingRate", "BTCUSDT", None)]
                   if r["fundingTime"] < ms("2024-03-03")]
    t = got.table.to_pandas()
    assert len(t) == 6 == len(seeded_rows)
    assert list(t["funding_time"]) == [pd.Timestamp(r["fundingTime"], unit="ms", tz="UTC")
                                       for r in seeded_rows]
    assert list(t["funding_rate"]) == [float(r["fundingRate"]) for r in seeded_rows]
    assert list(t["mark_price"]) == [float(r["markPrice"]) for r in seeded_rows]
    assert list(t["funding_interval_hours"]) == [8] * 6        # jittered ms times still round to 8 h
    assert (t["source"] == "rest").all()
    hits = server.hits("/fapi/v1/fundingRate")
    assert len(hits) == 2 and all(h.query["symbol"] == "BTCUSDT" for h in hits)


def test_funding_cm_has_no_mark_price(server):
    got = rest(server).funding("cm", "BTCUSD_PERP", D1, D1, now=LATER)
    t = got.table.to_pandas()
    assert len(t) == 3 and t["mark_price"].isna().all() and got.table.column("mark_price").null_count == 3
    assert list(t["funding_interval_hours"]) == [8, 8, 8]


def test_funding_empty_mark_price_is_null(server):
    def blank(rows):
        rows[1]["markPrice"] = ""
        return rows
    server.mutate(blank, path="/fapi/v1/fundingRate")
    got = rest(server).funding("um", "BTCUSDT", D1, D1, now=LATER, progress=True)
    assert got.table.column("mark_price").null_count == 1 and not got.rejected
    assert got.table.column("mark_price").to_pylist()[1] is None


def test_funding_interval_rule_follows_changes():
    rows = funding_rows("um", "XUSDT", D1, "2024-03-01T17:00", every_hours=8) + \
        funding_rows("um", "XUSDT", "2024-03-01T20:00", D2, every_hours=4)
    gap = funding_rows("um", "YUSDT", D1, D2, every_hours=8)
    del gap[1]                                                   # 08:00 missing: a 16 h gap
    with FakeBinance({("um", "fundingRate", "XUSDT", None): rows,
                      ("um", "fundingRate", "YUSDT", None): gap}) as srv:
        got = rest(srv).funding("um", "XUSDT", D1, D1, now=LATER)
        holed = rest(srv).funding("um", "YUSDT", D1, D1, now=LATER)
    assert [t.hour for t in got.table.column("funding_time").to_pylist()] == [0, 8, 16, 20]
    assert got.table.column("funding_interval_hours").to_pylist() == [8, 8, 8, 4]
    assert holed.table.column("funding_interval_hours").to_pylist() == [None, None]
    lone = parse_pages("um", "fundingRate", [(got.pages[0][0], json.dumps(rows[:1]).encode())])
    assert lone.column("funding_interval_hours").to_pylist() == [None]


def test_spot_has_no_funding(server):
    with pytest.raises(ValueError, match="spot"):
        rest(server).funding("spot", "BTCUSDT", D1, D1)


# ---------------------------------------------------------------- bronze pages
def test_pages_are_the_bodies_exactly_as_received_one_file_per_day(server):
    got = rest(server).klines("spot", "klines", "BTCUSDT", "1m", D1, D2, now=LATER)
    hits = server.hits("/api/v3/klines")
    assert len(got.pages) == 2
    assert got.pages[0][1] == hits[0].body + b"\n" + hits[1].body
    assert got.pages[1][1] == hits[2].body + b"\n" + hits[3].body
    assert parse_page_key(got.pages[1][0]) == ("spot", "klines", "BTCUSDT", "1m", dt.date(2024, 3, 2))


def test_parse_pages_rebuilds_the_table_from_bronze(server):
    got = rest(server).klines("cm", "klines", "BTCUSD_PERP", "1m", D1, D2, now="2024-03-02T06:00")
    again = parse_pages("cm", "klines", got.pages, now="2024-03-02T06:00")
    assert again.equals(got.table)
    assert days_with_data(again) == {dt.date(2024, 3, 1), dt.date(2024, 3, 2)} == got.days
    f = rest(server).funding("um", "BTCUSDT", D1, D2, now=LATER)
    assert parse_pages("um", "fundingRate", f.pages).equals(f.table)
    assert f.pages[0][0] == "rest/um/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-03-01.json"


def test_page_key_round_trip_and_bad_names():
    for args in (("um", "markPriceKlines", "BTCUSDT", "1h", dt.date(2024, 1, 31)),
                 ("cm", "fundingRate", "BTCUSD_PERP", None, dt.date(2024, 2, 29))):
        assert parse_page_key(page_key(*args)) == args
    with pytest.raises(ValueError, match="REST page key"):
        parse_page_key("rest/um/klines/BTCUSDT/1h/ETHUSDT-1h-2024-01-01.json")


def test_bad_requests_raise_value_error(server):
    src = rest(server)
    with pytest.raises(ValueError, match="allowed"):
        src.klines("eu", "klines", "BTCUSDT", "1m", D1, D1)
    with pytest.raises(ValueError, match="1mo"):
        src.klines("spot", "klines", "BTCUSDT", "1M", D1, D1)
    with pytest.raises(ValueError, match="after"):
        src.klines("um", "klines", "BTCUSDT", "1m", D2, D1)
    with pytest.raises(ValueError, match="start is required"):
        src.klines("um", "klines", "BTCUSDT", "1m", None, D1)
    with pytest.raises(ValueError, match="http"):
        BinanceREST("ftp://x")
    with pytest.raises(ValueError, match="exchange symbol"):
        src.klines("um", "klines", "../BTCUSDT", "1m", D1, D1)
    assert server.requests == []


def test_empty_range_in_the_future_asks_nothing(server):
    got = rest(server).klines("um", "klines", "BTCUSDT", "1m", "2030-01-01", "2030-01-02", now=LATER)
    assert got.ok and got.pages == [] and got.table.num_rows == 0 and server.requests == []


def test_exported_from_the_package_and_picklable(server):
    assert cl.BinanceREST is BinanceREST and "BinanceREST" in cl.__all__
    src = rest(server)
    assert src.klines("um", "klines", "BTCUSDT", "1h", D1, D1, now=LATER).ok
    copy = pickle.loads(pickle.dumps(src))
    assert copy.klines("um", "klines", "BTCUSDT", "1h", D1, D1, now=LATER).table.num_rows == 24


def test_fake_server_stops_cleanly():
    srv = FakeBinance({("um", "klines", "BTCUSDT", "1h"): []}).start()
    url = srv.url
    srv.hang(30)
    srv.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/fapi/v1/klines?symbol=BTCUSDT&interval=1h", timeout=1)

"""REST faults against the fake Binance server (a real HTTP server on 127.0.0.1, through
ccxt): 429 with Retry-After, 418 bans, 5xx and a socket timeout. Each case compares the rows
brought back with the server's seeded rows (0 lost, 0 doubled) and, where retries run out, a
second call once the fault is gone brings every row."""
from __future__ import annotations

import pandas as pd
import pytest

from cryptolake.sources.rest import BinanceREST
from cryptolake.testing.rest_server import FakeBinance, kline_rows

from .conftest import record

D1, D2, LATER = "2024-03-01", "2024-03-02", "2024-03-10"


@pytest.fixture
def server():
    rows = {("um", "klines", "BTCUSDT", "1h"): kline_rows("um", "BTCUSDT", "1h", D1, "2024-03-03", seed=4)}
    with FakeBinance(rows) as srv:
        yield srv


def tally(kind, server, got, healed=True):
    want = pd.DataFrame(server.rows[("um", "klines", "BTCUSDT", "1h")]).iloc[:, [0, 4]]
    want.columns = ["t", "close"]
    want["t"] = pd.to_datetime(want["t"], unit="ms", utc=True)
    want["close"] = want["close"].astype(float)
    g = got.table.to_pandas() if got.table is not None else pd.DataFrame({"open_time": [], "close": []})
    g = pd.DataFrame({"t": pd.to_datetime(g["open_time"], utc=True), "close": g["close"].astype(float)})
    doubled = int(g.duplicated("t").sum())
    m = want.merge(g.drop_duplicates("t"), on="t", how="outer", indicator=True, suffixes=("_w", "_g"))
    lost = int((m["_merge"] == "left_only").sum())
    extra = int((m["_merge"] == "right_only").sum())
    both = m[m["_merge"] == "both"]
    wrong = int((both["close_w"] != both["close_g"]).sum())
    ok = lost == doubled == extra == wrong == 0
    record(kind, len(want), len(g), lost, doubled, healed and ok)
    assert ok, dict(lost=lost, doubled=doubled, extra=extra, wrong=wrong)


def rest(server, **kw):
    kw.setdefault("rate_limit", False)
    kw.setdefault("backoff", 0.01)
    return BinanceREST(server.url, **kw)


def test_429_with_retry_after_is_waited_out(server):
    server.fail(429, retry_after=1, times=2)
    got = rest(server).klines("um", "klines", "BTCUSDT", "1h", D1, D2, now=LATER)
    assert got.ok, got.errors
    assert [h.status for h in server.hits("/fapi/v1/klines")].count(429) == 2
    tally("REST 429 + Retry-After", server, got)


def test_418_ban_is_waited_out_or_given_up_then_healed(server):
    server.fail(418, retry_after=1, times=1)
    got = rest(server).klines("um", "klines", "BTCUSDT", "1h", D1, D2, now=LATER)
    assert got.ok, got.errors
    tally("REST 418 (short ban)", server, got)
    server.fail(418, retry_after=3 * 86400, times=1)               # a long ban: give up at once
    got = rest(server, max_wait=60).klines("um", "klines", "BTCUSDT", "1h", D1, D2, now=LATER)
    assert not got.ok and got.requests == 1
    again = rest(server).klines("um", "klines", "BTCUSDT", "1h", D1, D2, now=LATER)
    tally("REST 418 (long ban, then re-run)", server, again, healed=again.ok)


def test_socket_timeout_is_retried_and_exhausted_retries_heal_on_rerun(server):
    server.hang(30.0, times=1)                                     # woken at teardown
    got = rest(server, timeout=1.0).klines("um", "klines", "BTCUSDT", "1h", D1, D2, now=LATER)
    assert got.ok, got.errors
    tally("REST socket timeout", server, got)
    server.hang(30.0, times=3)
    got = rest(server, timeout=0.5, retries=1).klines("um", "klines", "BTCUSDT", "1h", D1, D2, now=LATER)
    assert not got.ok
    again = rest(server, timeout=5).klines("um", "klines", "BTCUSDT", "1h", D1, D2, now=LATER)
    tally("REST timeouts past retries, then re-run", server, again, healed=again.ok)


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_retried(server, status):
    server.fail(status, times=2)
    got = rest(server).klines("um", "klines", "BTCUSDT", "1h", D1, D2, now=LATER)
    assert got.ok, got.errors
    tally(f"REST {status}", server, got)

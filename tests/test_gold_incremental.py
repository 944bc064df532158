"""Incremental gold builds (stale partitions, republished silver, carried dollar bars),
features and panels with universe masking, on real Delta tables on disk."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import cryptolake as cl
from cryptolake import schema
from cryptolake.testing.archive import ArchiveBuilder
from tests.test_gold import AGG, KSCH, klines, pandas_bars, write_silver

TSCH = pa.schema([("agg_trade_id", pa.int64()), ("price", pa.float64()), ("quantity", pa.float64()),
                  ("first_trade_id", pa.int64()), ("last_trade_id", pa.int64()),
                  ("transact_time", schema.TS), ("is_buyer_maker", pa.bool_()), ("source", pa.string())])


def agg_trades(start: str, end: str, n: int, seed: int, first_id: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lo, hi = pd.Timestamp(start, tz="UTC").value // 1000, pd.Timestamp(end, tz="UTC").value // 1000
    t = np.sort(rng.integers(lo, hi, n))
    k = rng.integers(1, 4, n)
    last = first_id + np.cumsum(k) - 1
    return pd.DataFrame({"agg_trade_id": np.arange(first_id, first_id + n), "price": 100 + rng.random(n),
                         "quantity": rng.random(n) * 5, "first_trade_id": last - k + 1, "last_trade_id": last,
                         "transact_time": pd.DatetimeIndex(t.astype("datetime64[us]")).tz_localize("UTC"),
                         "is_buyer_maker": rng.random(n) < 0.5, "source": "archive_daily"})


def dollar_reference(tr: pd.DataFrame, size: float) -> pd.DataFrame:
    """A plain loop: a bar closes at the trade where price * qty summed since the bar opened
    reaches `size`; the next bar opens at the following trade."""
    rows, acc, start = [], 0.0, 0
    p, q = tr["price"].to_numpy(), tr["quantity"].to_numpy()
    for i in range(len(tr)):
        acc += p[i] * q[i]
        if acc >= size:
            seg = slice(start, i + 1)
            rows.append((tr["transact_time"].iloc[i], tr["transact_time"].iloc[start], p[start], p[seg].max(),
                         p[seg].min(), p[i], q[seg].sum(),
                         int((tr["last_trade_id"].iloc[seg] - tr["first_trade_id"].iloc[seg] + 1).sum())))
            acc, start = 0.0, i + 1
    return pd.DataFrame(rows, columns=["close_time", "open_time", "open", "high", "low", "close", "volume",
                                       "trades"]).set_index("close_time")


@pytest.fixture
def lake(tmp_path):
    return cl.Lake(str(tmp_path / "lake"))


def test_dollar_bars_match_reference_and_incremental_equals_full_rebuild(lake):
    jan = agg_trades("2024-01-20", "2024-02-01", 3000, 1)
    feb1 = agg_trades("2024-02-01", "2024-02-10", 2000, 2, first_id=10_000)
    write_silver(lake, "um_agg_trades", TSCH, {"BTCUSDT": pd.concat([jan, feb1])}, tcol="transact_time",
                 interval=None)
    lake.build_gold("trade_bars", "um_agg_trades", by="dollar", size=2e3, progress=False)
    # new days in February and a new month arrive
    feb2 = agg_trades("2024-02-10", "2024-03-05", 2500, 3, first_id=20_000)
    allt = pd.concat([jan, feb1, feb2], ignore_index=True)
    write_silver(lake, "um_agg_trades", TSCH, {"BTCUSDT": pd.concat([feb1, feb2])}, tcol="transact_time",
                 interval=None)
    st = lake.gold.stale()
    assert list(st["month"]) == ["2024-02", "2024-03"] and set(st["table"]) == {"um_trade_bars_dollar_2000"}
    rep = lake.build_gold(progress=False)
    assert list(rep["symbol"]) == ["BTCUSDT"] and lake.gold.stale().empty
    inc = lake.gold.um_trade_bars_dollar_2000.read("BTCUSDT")
    ref = dollar_reference(allt, 2e3)
    assert len(inc) == len(ref)
    for c in ("open", "high", "low", "close", "volume"):
        np.testing.assert_allclose(inc[c].to_numpy(), ref[c].to_numpy(), rtol=1e-12)
    assert (inc["trades"].to_numpy() == ref["trades"].to_numpy()).all()
    assert (inc.index == ref.index).all() and (inc["open_time"].to_numpy() == ref["open_time"].to_numpy()).all()
    # a bar that opened in January and closed in February exists: the carry crossed the month
    assert ((inc["open_time"].dt.month == 1) & (inc.index.month == 2)).any() or \
        ((inc["open_time"].dt.month == 2) & (inc.index.month == 3)).any()
    lake.build_gold("trade_bars", "um_agg_trades", by="dollar", size=2e3, progress=False)   # full
    pd.testing.assert_frame_equal(lake.gold.um_trade_bars_dollar_2000.read("BTCUSDT"), inc)


def test_time_trade_bars_equal_pandas(lake):
    tr = agg_trades("2024-01-01", "2024-01-03", 4000, 5)
    write_silver(lake, "um_agg_trades", TSCH, {"ETHUSDT": tr}, tcol="transact_time", interval=None)
    lake.build_gold("trade_bars", "um_agg_trades", rule="1h", progress=False)
    got = lake.gold.um_trade_bars_1h.read("ETHUSDT")
    g = tr.set_index("transact_time").resample("1h")
    exp = pd.DataFrame({"open": g["price"].first(), "high": g["price"].max(), "low": g["price"].min(),
                        "close": g["price"].last(), "volume": g["quantity"].sum()})
    exp = exp[g["price"].count() > 0]
    pd.testing.assert_frame_equal(got[list(exp.columns)], exp, check_freq=False, check_names=False,
                                  check_index_type=False)


def test_republished_silver_month_makes_exactly_its_gold_partitions_stale(lake):
    btc = klines("2024-01-30", "2024-02-03", 1)
    eth = klines("2024-01-30", "2024-02-03", 2)
    write_silver(lake, "um_klines_1m", KSCH, {"BTCUSDT": btc, "ETHUSDT": eth})
    lake.build_gold("bars", "um_klines_1m", rule="1h", progress=False)
    lake.build_gold("bars", "um_klines_1m", rule="4h", phases="all", progress=False)
    assert lake.gold.stale().empty
    eth_before = lake.gold.um_bars_1h.read("ETHUSDT")
    # the archive republishes BTCUSDT February: different prices
    btc2 = btc.copy()
    feb = btc2["open_time"] >= "2024-02-01"
    btc2.loc[feb, ["open", "high", "low", "close"]] *= 1.01
    write_silver(lake, "um_klines_1m", KSCH, {"BTCUSDT": btc2[feb]})
    st = lake.gold.stale()
    assert sorted(map(tuple, st.to_numpy())) == [
        ("um_bars_1h", "BTCUSDT", "2024-02"),
        ("um_bars_4h", "BTCUSDT", "2024-01"), ("um_bars_4h", "BTCUSDT", "2024-02")]
    rep = lake.build_gold(progress=False)
    assert sorted(zip(rep["table"], rep["symbol"])) == [("um_bars_1h", "BTCUSDT"), ("um_bars_4h", "BTCUSDT")]
    assert lake.gold.stale().empty
    exp = pandas_bars(btc2, "1h", full=60)
    pd.testing.assert_frame_equal(lake.gold.um_bars_1h.read("BTCUSDT")[list(AGG)], exp, check_freq=False,
                                  check_names=False, check_index_type=False)
    for k in (0, 239):
        exp = pandas_bars(btc2, "4h", offset=pd.Timedelta(minutes=k), full=240)
        got = lake.gold.um_bars_4h.read("BTCUSDT", phase=f"{k}min")[list(AGG)]
        pd.testing.assert_frame_equal(got, exp, check_freq=False, check_names=False, check_index_type=False)
    pd.testing.assert_frame_equal(lake.gold.um_bars_1h.read("ETHUSDT"), eth_before)
    hist = lake.gold.um_bars_1h.history()
    assert hist["rows_removed"].iloc[0] == 24 * 2          # only BTCUSDT February was rewritten


def test_features_causal_with_warmup_marked(lake):
    write_silver(lake, "um_klines_1m", KSCH, {"BTCUSDT": klines("2024-01-01", "2024-01-05", 4)})
    lake.build_gold("bars", "um_klines_1m", rule="1h", progress=False)
    specs = [("sma", {"window": 5}), "rsi"]
    lake.build_gold("features", "um_bars_1h", indicators=specs, progress=False)
    full = lake.gold.um_features_1h.read("BTCUSDT")
    bars = lake.gold.um_bars_1h.read("BTCUSDT")
    np.testing.assert_allclose(full["sma_5"].to_numpy(), bars["close"].rolling(5).mean().to_numpy(), rtol=1e-12)
    warm = [c for c in full.columns if c.startswith("warmup_")]
    assert sorted(warm) == ["warmup_rsi_14", "warmup_sma_5"]
    assert full["warmup_sma_5"].sum() == 4 and full["warmup_rsi_14"].sum() >= 13
    assert full.loc[~full["warmup_sma_5"], "sma_5"].notna().all()
    # no value depends on a later row: a build that stops earlier agrees on its rows
    lake.build_gold("features", "um_bars_1h", indicators=specs, end="2024-01-03", progress=False)
    short = lake.gold.um_features_1h.read("BTCUSDT")
    pd.testing.assert_frame_equal(short, full.loc[short.index])
    # none on rows before the build's start: a late start warms up again from its first row
    lake.build_gold("features", "um_bars_1h", indicators=specs, start="2024-01-03", progress=False)
    late = lake.gold.um_features_1h.read("BTCUSDT")
    assert late["warmup_sma_5"].iloc[:4].all() and not late["warmup_sma_5"].iloc[4:].any()
    np.testing.assert_allclose(late["sma_5"].to_numpy(),
                               bars.loc["2024-01-03":, "close"].rolling(5).mean().to_numpy(), rtol=1e-12)


def test_panel_with_universe_masks_a_delisted_symbol(tmp_path):
    b = ArchiveBuilder((tmp_path / "archive").as_uri())
    for d in range(1, 6):
        b.klines("um", "BTCUSDT", "1d", f"2024-01-{d:02d}")
    for d in range(1, 3):
        b.klines("um", "OLDUSDT", "1d", f"2024-01-{d:02d}")          # delisted after Jan 2
    lake = cl.Lake(str(tmp_path / "lake"), archive=cl.BinanceArchive(b.url))
    # silver holds OLDUSDT rows after its delisting (e.g. a stale or bad source): the panel hides them
    write_silver(lake, "um_klines_1m", KSCH, {"BTCUSDT": klines("2024-01-01", "2024-01-06", 1),
                                              "OLDUSDT": klines("2024-01-01", "2024-01-06", 2)})
    lake.build_gold("bars", "um_klines_1m", rule="1h", progress=False)
    t = lake.gold.um_bars_1h
    raw = t.panel("close")
    assert list(raw.columns) == ["BTCUSDT", "OLDUSDT"] and raw["OLDUSDT"].notna().all()
    pit = t.panel("close", universe=True)
    assert pit["OLDUSDT"].loc[:"2024-01-02 23:00"].notna().all()
    assert pit["OLDUSDT"].loc["2024-01-03":].isna().all()
    assert pit["BTCUSDT"].notna().all()
    one = lake.silver.um_klines_1m.panel("close", universe=True, start="2024-01-02", end="2024-01-03")
    assert one["OLDUSDT"].loc["2024-01-03"].isna().all() and one["OLDUSDT"].loc["2024-01-02"].notna().all()
    with pytest.raises(ValueError, match="unknown panel column 'clsoe'.*'close'"):
        t.panel("clsoe")
    with pytest.raises(ValueError, match="unknown panel column"):
        lake.silver.um_klines_1m.panel("nope")

"""Tick/volume/dollar bars against a plain-Python reference, and carry-over equality."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptolake.ops.info_bars import Carry, bars
from cryptolake.testing.strategies import trades_frames

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def reference(df: pd.DataFrame, by: str, size: float) -> list[tuple]:
    """The textbook loop: accumulate, close on the crossing trade, restart at zero."""
    qty = df["qty"] if "qty" in df else df["quantity"]
    n = (df["last_trade_id"] - df["first_trade_id"] + 1) if "first_trade_id" in df else pd.Series(1, index=df.index)
    out, cur = [], None
    for ts, p, q, m, k in zip(df.index, df["price"], qty, df["is_buyer_maker"], n):
        if cur is None:
            cur = dict(open_time=ts, open=p, high=p, low=p, volume=0.0, quote_volume=0.0, trades=0,
                       tbv=0.0, tbqv=0.0, cum=0.0)
        cur["high"], cur["low"] = max(cur["high"], p), min(cur["low"], p)
        cur["volume"] += q
        cur["quote_volume"] += p * q
        cur["trades"] += int(k)
        if not m:
            cur["tbv"] += q
            cur["tbqv"] += p * q
        cur["cum"] += {"tick": k, "volume": q, "dollar": p * q}[by]
        if cur["cum"] >= size:
            out.append((ts, cur["open_time"], cur["open"], cur["high"], cur["low"], p, cur["volume"],
                        cur["quote_volume"], cur["trades"], cur["tbv"], cur["tbqv"]))
            cur = None
    return out


def as_rows(b: pd.DataFrame) -> list[tuple]:
    cols = ["open_time", "open", "high", "low", "close", "volume", "quote_volume", "trades",
            "taker_buy_volume", "taker_buy_quote_volume"]
    return [(i, *r) for i, r in zip(b.index, b[cols].itertuples(index=False, name=None))]


def frame(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    t = pd.date_range("2024-01-01", periods=n, freq="250ms", tz="UTC", name="time")
    return pd.DataFrame({"price": 100 + rng.standard_normal(n).cumsum(), "qty": rng.random(n) * 5,
                         "is_buyer_maker": rng.random(n) < 0.5}, index=t)


@pytest.mark.parametrize("by,size", [("tick", 50), ("volume", 100.0), ("dollar", 2e4), ("dollar", 1.0)])
def test_equals_the_reference_loop(by, size):
    df = frame()
    got, want = as_rows(bars(df, by, size)), reference(df, by, size)
    assert len(got) == len(want) and len(want) > 0
    for g, w in zip(got, want):
        assert g[:2] == w[:2] and g[8] == w[8]
        np.testing.assert_allclose(g[2:8] + g[9:], w[2:8] + w[9:], rtol=1e-12)


@SETTINGS
@given(trades=trades_frames(max_trades=600), by=st.sampled_from(["tick", "volume", "dollar"]),
       cuts=st.lists(st.integers(0, 600), max_size=5))
def test_incremental_equals_one_pass_and_volume_is_conserved(trades, by, cuts):
    if isinstance(trades.index, pd.MultiIndex):
        trades = trades.xs(trades.index[0][0], level=0) if len(trades) else trades.droplevel(0)
    size = {"tick": 7, "volume": float(trades[["qty" if "qty" in trades else "quantity"]].sum().iloc[0]) / 5 + 1e-9,
            "dollar": 1e3}[by]
    whole = bars(trades, by, size)
    carry = Carry(by, float(size))
    edges = sorted({0, len(trades), *[c for c in cuts if c <= len(trades)]})
    parts = [bars(trades.iloc[a:b], by, size, carry=carry) for a, b in zip(edges[:-1], edges[1:])]
    joined = pd.concat(parts) if parts else whole
    pd.testing.assert_frame_equal(joined, whole, check_freq=False)
    fstate, istate = carry.get(None)
    left = fstate[4] if istate[0] else 0.0          # base volume of the unfinished bar
    qty = trades["qty"] if "qty" in trades else trades["quantity"]
    assert whole["volume"].sum() + left == pytest.approx(qty.sum(), rel=1e-9, abs=1e-9)
    assert (whole["high"] >= whole[["open", "close"]].max(axis=1)).all()
    assert (whole["low"] <= whole[["open", "close"]].min(axis=1)).all()


def test_per_symbol_on_a_multiindex():
    a, b = frame(500, 1), frame(700, 2)
    both = pd.concat({"AAA": a, "BBB": b}, names=["symbol", "time"])
    got = bars(both, "dollar", 5e3)
    pd.testing.assert_frame_equal(got.xs("BBB"), bars(b, "dollar", 5e3), check_freq=False)
    assert list(got.index.get_level_values(0).unique()) == ["AAA", "BBB"]


@pytest.mark.parametrize("kw,msg", [({"by": "time"}, "allowed: tick, volume, dollar"),
                                    ({"size": 0}, "positive"), ({"size": "x"}, "positive")])
def test_bad_input(kw, msg):
    with pytest.raises(ValueError, match=msg):
        bars(frame(10), **{"by": "dollar", "size": 1e4, **kw})


def test_the_accessor_verb():
    import cryptolake  # noqa: F401  (registers df.lake)
    df = frame()
    pd.testing.assert_frame_equal(df.lake.bars(by="volume", size=100.0), bars(df, "volume", 100.0))

"""trades -> bars against a pandas resample/groupby oracle."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptolake.ops.bars import trades_to_bars
from cryptolake.testing.strategies import pandas_trades_to_bars, trades_frames

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
EXACT = ["open", "high", "low", "close", "trades"]
SUMS = ["volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume", "vwap"]


def _check(ours, ref):
    assert ours.index.equals(ref.index)
    assert ours.index.dtype == ref.index.dtype
    pd.testing.assert_frame_equal(ours[EXACT], ref[EXACT], check_exact=True, check_dtype=False,
                                  check_freq=False)
    # Kahan sums vs pandas' reduceat sums: equal to the last bits, not always bit for bit
    pd.testing.assert_frame_equal(ours[SUMS], ref[SUMS], rtol=1e-13, atol=1e-12,
                                  check_freq=False)


@SETTINGS
@given(trades=trades_frames(max_trades=800), rule=st.sampled_from(["1s", "1min", "5min", "1h", "7min"]),
       offset=st.one_of(st.none(), st.sampled_from(["30s", "5min", "-2min"])))
def test_equals_pandas_groupby(trades, rule, offset):
    _check(trades_to_bars(trades, rule, offset), pandas_trades_to_bars(trades, rule, offset))


@SETTINGS
@given(trades=trades_frames(max_trades=500))
def test_volume_conserved_and_bounds(trades):
    bars = trades_to_bars(trades, "1min")
    assert bars["trades"].sum() == len(trades)
    assert np.isclose(bars["volume"].sum(), trades["qty"].sum(), rtol=1e-12)
    assert (bars["taker_buy_volume"] <= bars["volume"] * (1 + 1e-12)).all()
    assert (bars["low"] <= bars[["open", "close", "vwap"]].min(axis=1) * (1 + 1e-12)).all()
    assert (bars[["open", "close", "vwap"]].max(axis=1) <= bars["high"] * (1 + 1e-12)).all()


def test_agg_trades_count_trade_ids_and_multiindex():
    t = pd.to_datetime(["2024-01-01 00:00:01", "2024-01-01 00:00:01", "2024-01-01 00:00:59",
                        "2024-01-01 00:01:00"], utc=True).rename("transact_time")
    one = pd.DataFrame({"price": [10.0, 11, 9, 12], "quantity": [1.0, 2, 3, 4],
                        "first_trade_id": [1, 3, 10, 20], "last_trade_id": [2, 9, 10, 25],
                        "is_buyer_maker": [False, True, False, True]}, index=t)
    bars = trades_to_bars(one, "1min")
    assert bars["trades"].tolist() == [2 + 7 + 1, 6]
    assert bars["open"].tolist() == [10.0, 12] and bars["high"].tolist() == [11.0, 12]
    assert bars["taker_buy_volume"].tolist() == [4.0, 0]
    assert bars["taker_buy_quote_volume"].tolist() == [10.0 + 27, 0]
    assert bars.index.name == "open_time"
    both = pd.concat({"A": one, "B": one.iloc[2:]}, names=["symbol", "transact_time"])
    multi = trades_to_bars(both, "1min")
    assert multi.index.names == ["symbol", "open_time"]
    pd.testing.assert_frame_equal(multi.loc["A"], bars)
    pd.testing.assert_frame_equal(multi.loc["B"], trades_to_bars(one.iloc[2:], "1min"))


def test_unsorted_trades_raise():
    t = pd.to_datetime(["2024-01-01 00:00:02", "2024-01-01 00:00:01"], utc=True)
    df = pd.DataFrame({"price": [1.0, 2], "qty": [1.0, 1], "is_buyer_maker": [True, False]},
                      index=t)
    with pytest.raises(ValueError, match="sort_index"):
        trades_to_bars(df, "1min")

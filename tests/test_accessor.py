"""df.lake: validation messages and the verbs delegating to ops."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cryptolake  # noqa: F401  (registers df.lake)
import cryptolake.accessors  # noqa: F401
from cryptolake.ops.gaps import fill_gaps, gaps
from cryptolake.ops.resample import resample
from cryptolake.testing.strategies import pandas_resample


def _frame(n=500, tz="UTC"):
    rng = np.random.default_rng(7)
    idx = pd.date_range("2024-05-01 10:03", periods=n, freq="1min", tz=tz, name="open_time")
    c = 50 + np.cumsum(rng.normal(0, 0.1, n))
    o = np.r_[50.0, c[:-1]]
    df = pd.DataFrame({"open": o, "high": np.maximum(o, c) + 0.05, "low": np.minimum(o, c) - 0.05,
                       "close": c, "volume": rng.exponential(1.0, n),
                       "trades": rng.integers(1, 9, n)}, index=idx)
    return df[rng.random(n) > 0.1]


def test_verbs_equal_ops_and_pandas():
    df = _frame()
    pd.testing.assert_frame_equal(df.lake.resample("1h", offset="5min"),
                                  resample(df, "1h", "5min"))
    pd.testing.assert_frame_equal(df.lake.resample("15min"), pandas_resample(df, "15min"),
                                  check_freq=False, check_exact=True)
    assert "bars" in df.lake.resample("1h", bars=True)
    assert len(df.lake.resample("1h", partial=False)) < len(df.lake.resample("1h"))
    pd.testing.assert_frame_equal(df.lake.gaps(), gaps(df))
    pd.testing.assert_frame_equal(df.lake.fill_gaps(), fill_gaps(df))


def test_naive_index_says_how_to_fix():
    with pytest.raises(ValueError, match=r"naive.*tz_localize\('UTC'\)"):
        _frame(tz=None).lake.resample("1h")     # a verb validates; df.lake itself never raises


def test_unsorted_index_says_how_to_fix():
    df = _frame()
    with pytest.raises(ValueError, match=r"not (strictly increasing|sorted).*sort_index"):
        df.iloc[::-1].lake.gaps()


def test_not_a_datetime_index_says_how_to_fix():
    with pytest.raises(ValueError, match="DatetimeIndex.*set_index"):
        _frame().reset_index(drop=True).lake.fill_gaps()


def test_missing_ohlc_named_where_needed():
    df = _frame().drop(columns=["high", "low"])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['high', 'low'\]"):
        df.lake.resample("1h")
    with pytest.raises(ValueError, match="missing column"):
        df.lake.plot()
    assert len(df.lake.gaps()) > 0  # gaps only needs the time index


def test_trades_frame_without_ohlc_makes_bars():
    t = pd.to_datetime(["2024-01-01 00:00:01", "2024-01-01 00:00:01", "2024-01-01 00:02:00"],
                       utc=True).rename("time")
    trades = pd.DataFrame({"price": [1.0, 2, 3], "qty": [1.0, 1, 2],
                           "is_buyer_maker": [True, False, False]}, index=t)
    bars = trades.lake.trades_to_bars("1min")
    assert bars["close"].tolist() == [2.0, 3.0] and bars["trades"].tolist() == [2, 1]


def test_multiindex_interleaved_symbols_rejected():
    df = pd.concat({"B": _frame(), "A": _frame()}, names=["symbol", "open_time"])
    with pytest.raises(ValueError, match="sort_index"):
        df.sort_index(level="open_time").lake.resample("1h")   # rows of A and B interleaved
    out = df.sort_index().lake.resample("1h")
    assert list(out.index.get_level_values("symbol").unique()) == ["A", "B"]


def test_indicators_dispatch_to_the_indicator_table():
    ind = pytest.importorskip("cryptolake.ops.indicators")
    df = _frame()
    assert set(ind.INDICATORS) <= set(dir(df.lake.indicators))
    pd.testing.assert_series_equal(df.lake.indicators.rsi(window=14),
                                   ind.INDICATORS["rsi"](df, window=14))
    specs = ["rsi", ("bbands", {"window": 30})]
    pd.testing.assert_frame_equal(df.lake.indicators(specs), ind.add_indicators(df, specs))
    with pytest.raises(AttributeError, match="available"):
        df.lake.indicators.no_such_thing

"""The pandas layer of `df.lake.indicators`: the fast output constructors give exactly what
pandas' public constructors give, and the remembered checks (index, column positions) never
let a bad or changed frame through."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cryptolake.accessors  # noqa: F401
from cryptolake.ops import _frame
from cryptolake.ops import indicators as OI
from cryptolake.testing.oracles import ORACLES, assert_matches


def make_ohlcv(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n))), 2)
    open_ = np.r_[close[:1], close[:-1]]
    high = np.maximum(open_, close) + np.round(rng.exponential(0.05, n), 2)
    low = np.minimum(open_, close) - np.round(rng.exponential(0.05, n), 2)
    volume = np.round(rng.lognormal(1.0, 1.0, n), 3) * (rng.random(n) > 0.05)
    idx = pd.date_range("2024-03-01", periods=n, freq="1min", tz="UTC", name="open_time")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": volume}, index=idx)


@pytest.fixture(params=[True, False], ids=["internals", "public-constructors"])
def fast(request, monkeypatch):
    monkeypatch.setattr(_frame, "FAST", request.param)
    return request.param


def test_series_equals_pandas_constructor_and_wraps_without_copy(fast):
    idx = pd.date_range("2024-01-01", periods=50, freq="1min", tz="UTC", name="open_time")
    a = np.random.default_rng(1).normal(size=50)
    got = _frame.series(a, idx, "rsi_14")
    pd.testing.assert_series_equal(got, pd.Series(a.copy(), index=idx, name="rsi_14"),
                                   check_exact=True)
    assert got.index is idx
    assert np.shares_memory(got.to_numpy(), a)
    got2 = _frame.series(a, idx, ("tuple", "name"))      # any hashable name
    assert got2.name == ("tuple", "name")


def test_frame_equals_pandas_constructor(fast):
    idx = pd.date_range("2024-01-01", periods=40, freq="1h", tz="UTC")
    arrs = tuple(np.random.default_rng(k).normal(size=40) for k in range(3))
    got = _frame.frame_from_arrays(["macd", "macd_signal", "macd_hist"], arrs, idx)
    exp = pd.DataFrame({"macd": arrs[0].copy(), "macd_signal": arrs[1].copy(),
                        "macd_hist": arrs[2].copy()}, index=idx)
    pd.testing.assert_frame_equal(got, exp, check_exact=True)
    assert np.shares_memory(got["macd_signal"].to_numpy(), arrs[1])
    got.iloc[0, 0] = 123.0                                 # an ordinary, writable frame
    assert got.iloc[0, 0] == 123.0


def test_empty_and_one_row_frames(fast):
    for n in (0, 1):
        df = make_ohlcv(n, 3) if n else make_ohlcv(5, 3).iloc[:0]
        out = df.lake.indicators.macd()
        assert list(out.columns) == ["macd", "macd_signal", "macd_hist"] and len(out) == n
        assert len(df.lake.indicators.rsi()) == n


def test_remembered_index_does_not_let_a_bad_frame_through():
    df = make_ohlcv(300, 5)
    df.lake.indicators.rsi()                               # remembers df.index
    bad = df.iloc[::-1]                                    # a new, decreasing index
    with pytest.raises(ValueError, match="increasing"):
        bad.lake.indicators.rsi()
    naive = df.tz_localize(None)
    with pytest.raises(ValueError, match="naive"):
        naive.lake.indicators.rsi()
    with pytest.raises(ValueError, match="missing column"):
        df[["close"]].lake.indicators.atr()               # same index object, fewer columns
    with pytest.raises(ValueError, match="DataFrame"):
        OI.rsi(df["close"])                                # a Series sharing the index


def test_column_changes_on_the_same_frame_are_seen():
    df = make_ohlcv(400, 6)
    first = df.lake.indicators.sma(window=5).to_numpy().copy()
    df["close"] = df["close"] * 2.0                        # same frame, same columns object
    second = df.lake.indicators.sma(window=5).to_numpy()
    np.testing.assert_allclose(second[4:], 2.0 * first[4:], rtol=1e-12)
    df.loc[df.index[-1], "close"] = 0.0                    # in-place edit of one value
    third = df.lake.indicators.sma(window=5).to_numpy()
    assert third[-1] != second[-1]
    reordered = df[["volume", "close", "low", "high", "open"]]   # other column positions
    assert_matches(reordered.lake.indicators.atr(), ORACLES["atr"].reference(df))


def test_integer_columns_are_read_as_float():
    df = make_ohlcv(200, 7)
    df["volume"] = np.arange(len(df), dtype=np.int64)
    assert_matches(df.lake.indicators.obv(), ORACLES["obv"].reference(df))


def test_accessor_methods_keep_their_names_and_docs():
    df = make_ohlcv(100, 8)
    ind = df.lake.indicators
    assert ind.rsi.__doc__ == OI.rsi.__doc__
    assert "rsi" in dir(ind)
    with pytest.raises(AttributeError, match="no indicator"):
        ind.nope
    pd.testing.assert_series_equal(ind.rsi(window=7), OI.rsi(df, window=7), check_exact=True)


def test_append_columns_equals_concat_and_keeps_the_input_unchanged(fast):
    df = make_ohlcv(300, 9)
    df["trades"] = np.arange(len(df), dtype=np.int64)     # a second block, another dtype
    before = df.copy()
    out = OI.add_indicators(df, ["rsi", "macd", ("sma", {"window": 5})])
    exp = pd.concat([df, OI.rsi(df), OI.macd(df), OI.sma(df, window=5)], axis=1)
    pd.testing.assert_frame_equal(out, exp, check_exact=True)
    out.iloc[:, 0] = -1.0                                  # copy-on-write: df is untouched
    out.loc[out.index[3], "close"] = -2.0
    pd.testing.assert_frame_equal(df, before, check_exact=True)
    df.iloc[5, 1] = 1e9                                    # and the other way round
    assert out.iloc[5, 1] != 1e9


def test_many_symbols_chunked_on_threads_equal_one_thread(monkeypatch):
    parts = {f"S{k}": make_ohlcv(7000 + 500 * k, 20 + k) for k in range(9)}
    panel = pd.concat(parts, names=["symbol"])
    specs = ["rsi", "macd", "atr", "adx", "vwap", "mfi", "bbands"]
    threaded = OI.add_indicators(panel, specs)
    monkeypatch.setattr(OI, "PARALLEL_MIN_ROWS", 10**12)   # everything on the calling thread
    single = OI.add_indicators(panel, specs)
    pd.testing.assert_frame_equal(threaded, single, check_exact=True)

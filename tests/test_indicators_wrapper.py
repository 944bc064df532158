"""The pandas layer of `df.lake.indicators`: the fast output constructors give exactly what
pandas' public constructors give, and the remembered checks (index, column positions) never
let a bad or changed frame through."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import cryptolake.accessors  # noqa: F401
from cryptolake.ops import _frame
from cryptolake.ops import indicators as OI
from cryptolake.testing.frames import walk_ohlcv as make_ohlcv
from cryptolake.testing.oracles import ORACLES, assert_matches


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
    out.loc[out.index[40], "macd_signal"] = 5.0            # the new columns are writable
    assert out["macd_signal"].iloc[40] == 5.0
    again = OI.add_indicators(out, ["rsi", ("sma", {"window": 5})])   # replaced in place
    assert list(again.columns) == list(out.columns)
    pd.testing.assert_series_equal(again["rsi_14"], OI.rsi(out), check_exact=True)


def test_many_symbols_chunked_on_threads_equal_one_thread(monkeypatch):
    parts = {f"S{k}": make_ohlcv(7000 + 500 * k, 20 + k) for k in range(9)}
    panel = pd.concat(parts, names=["symbol"])
    specs = ["rsi", "macd", "atr", "adx", "vwap", "mfi", "bbands"]
    threaded = OI.add_indicators(panel, specs)
    monkeypatch.setattr(OI, "PARALLEL_MIN_ROWS", 10**12)   # everything on the calling thread
    single = OI.add_indicators(panel, specs)
    pd.testing.assert_frame_equal(threaded, single, check_exact=True)


def _fresh(df: pd.DataFrame, name: str = "sma", **params):
    """The indicator on a deep copy: nothing remembered about `df` can play a part."""
    return OI.INDICATORS[name](df.copy(deep=True), **params)


def test_remembered_inputs_follow_every_change_to_the_frame():
    df = make_ohlcv(500, 10)
    idx = df.index

    def same(name="sma", **params):
        got = df.lake.indicators.__getattr__(name)(**params)
        exp = _fresh(df, name, **params)
        if isinstance(got, pd.Series):
            pd.testing.assert_series_equal(got, exp, check_exact=True)
        else:
            pd.testing.assert_frame_equal(got, exp, check_exact=True)
        df.lake.indicators.__getattr__(name)(**params)     # df remembered again for the next
        assert OI._MEMO is None or OI._MEMO[0]() is df

    same()
    same("atr")
    df.loc[idx[5], "close"] = 1.0                   # in place, no other reference
    same()
    view = df[:]                                    # a second reference: the next write copies
    df.loc[idx[6], "close"] = 2.0
    same()
    assert view.loc[idx[6], "close"] != 2.0
    df.iloc[7, 3] = 3.0
    same()
    df["close"] = df["close"] + 1.0                 # a new column array
    same()
    same("atr")
    df[["high", "low"]] = df[["high", "low"]].clip(lower=100.0)
    same("atr")
    df.insert(0, "x", 1.0)                           # positions shift
    same("atr")
    del df["open"]
    del df["x"]
    same("atr")
    df.columns = ["high", "low", "c", "volume"]
    with pytest.raises(ValueError, match="missing column"):
        df.lake.indicators.sma()
    df.columns = ["high", "low", "close", "volume"]
    same("vwap")
    same("williams_r")
    df.columns = ["low", "high", "close", "volume"]  # same names, other columns
    same("williams_r")
    df.index = df.index + pd.Timedelta("1min")
    same()
    good = df.index
    df.index = good[::-1]                            # same manager and blocks, a bad index
    with pytest.raises(ValueError, match="increasing"):
        df.lake.indicators.sma()
    df.index = good
    same()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # inplace=True is deprecated in pandas 3.1
        df.sort_index(ascending=False, inplace=True)
        with pytest.raises(ValueError, match="increasing"):
            df.lake.indicators.sma()
        df.sort_index(inplace=True)
    same()
    df["volume"] = np.arange(len(df), dtype=np.int64)   # int: read as a float copy
    same("obv")
    df.loc[idx[9] + pd.Timedelta("1min"), "volume"] = 10**6
    same("obv")


def test_remembered_inputs_keep_no_frame_alive():
    import gc
    import weakref

    df = make_ohlcv(1000, 11)
    df.lake.indicators.rsi()
    base = weakref.ref(df._mgr.blocks[0].values)
    frame = weakref.ref(df)
    del df
    gc.collect()
    assert frame() is None and base() is None and OI._MEMO is None
    df2 = make_ohlcv(1000, 12)
    df2.lake.indicators.rsi()
    old = weakref.ref(df2._mgr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df2.sort_index(ascending=False, inplace=True)   # df2 lives on; its old manager goes
    gc.collect()
    assert old() is None and OI._MEMO is None


def test_same_frame_from_two_threads():
    import threading

    frames = [make_ohlcv(3000, 20 + k) for k in range(2)]
    exp = [[_fresh(f, n) for n in ("sma", "atr", "macd")] for f in frames]
    errors = []

    def work(k):
        try:
            for _ in range(30):
                for f, e in zip(frames, exp, strict=True):
                    got = [f.lake.indicators.sma(), f.lake.indicators.atr(),
                           f.lake.indicators.macd()]
                    pd.testing.assert_series_equal(got[0], e[0], check_exact=True)
                    pd.testing.assert_series_equal(got[1], e[1], check_exact=True)
                    pd.testing.assert_frame_equal(got[2], e[2], check_exact=True)
        except Exception as ex:  # noqa: BLE001
            errors.append(ex)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []


def test_window_and_number_fast_paths_still_reject_bad_values():
    df = make_ohlcv(50, 13)
    for bad in (0, -3, True, 2.0, "5", None):
        with pytest.raises(ValueError, match="window must be an integer"):
            df.lake.indicators.sma(window=bad)
    assert df.lake.indicators.sma(window=np.int64(3)).name == "sma_3"
    for bad in (float("nan"), float("inf"), -float("inf"), True, "2"):
        with pytest.raises(ValueError, match="k must be a finite number"):
            df.lake.indicators.bbands(k=bad)
    pd.testing.assert_frame_equal(df.lake.indicators.bbands(k=np.float64(1.5)),
                                  df.lake.indicators.bbands(k=1.5), check_exact=True)


@pytest.mark.parametrize("internals", [True, False], ids=["internals", "public-constructors"])
def test_own_outputs_equal_pandas_constructors_and_are_independent(internals, monkeypatch):
    if not internals:
        monkeypatch.setattr(_frame, "_OWN", [None])      # as if the internals check had failed
    idx = pd.date_range("2024-01-01", periods=30, freq="1min", tz="UTC", name="open_time")
    a, b = np.random.default_rng(3).normal(size=(2, 30))
    s1, s2 = _frame.own_series(a, idx, "rsi_14"), _frame.own_series(b, idx, "rsi_14")
    pd.testing.assert_series_equal(s1, pd.Series(a.copy(), index=idx, name="rsi_14"),
                                   check_exact=True)
    assert s1.index is idx and np.shares_memory(s1.to_numpy(), a)
    f1 = _frame.own_frame(("x", "y"), (a.copy(), b.copy()), idx)
    f2 = _frame.own_frame(("x", "y"), (b.copy(), a.copy()), idx)
    pd.testing.assert_frame_equal(f1, pd.DataFrame({"x": a, "y": b}, index=idx),
                                  check_exact=True)
    for one, other in ((s1, s2), (f1, f2)):
        one.attrs["k"] = 1                                 # no state shared between results
        one.flags.allows_duplicate_labels = False
        assert other.attrs == {} and other.flags.allows_duplicate_labels
        assert one.flags.allows_duplicate_labels is False
    f1.iloc[0, 0] = 99.0
    assert f2.iloc[0, 0] != 99.0 and f1["x"].iloc[0] == 99.0
    f1["z"] = 1.0                                          # an ordinary frame: columns can be added
    assert list(f1.columns) == ["x", "y", "z"]

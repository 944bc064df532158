"""Indicators against TA-Lib (the oracle table's peer column), the exact EWM replay, the
output layout of the kernels, and the many-series path (symbols and indicators on threads)."""
from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptolake.kernels import indicators as K
from cryptolake.ops import indicators as OI
from cryptolake.ops.indicators import INDICATORS, add_indicators
from cryptolake.testing.oracles import ORACLES, TALIB, mismatch

from .test_indicators import make_ohlcv

talib = pytest.importorskip("talib")       # a dev dependency (pyproject: [dev])

LONG = make_ohlcv(8000, 11, flat=(0.2, 60))
WARMUP = 3000                              # TA-Lib's own EMA/RSI/ATR/ADX seeding has decayed


def _first(x):
    if isinstance(x, pd.DataFrame):
        return x.iloc[:, 0].to_numpy(dtype=np.float64)
    if isinstance(x, (tuple, list)):
        return np.asarray(x[0], dtype=np.float64)
    return np.asarray(x, dtype=np.float64)


def _rel(a, b):
    a, b = a[WARMUP:], b[WARMUP:]
    ok = np.isfinite(a) & np.isfinite(b)
    assert ok.sum() > 1000
    return float(np.max(np.abs(a[ok] - b[ok])) / np.mean(np.abs(b[ok])))


def test_every_indicator_has_a_talib_peer():
    assert set(TALIB) == set(ORACLES)


@pytest.mark.parametrize("name", sorted(n for n, p in TALIB.items() if p.same))
def test_agrees_with_talib_where_the_definitions_agree(name):
    peer = TALIB[name]
    arrs = {c: LONG[c].to_numpy() for c in ("high", "low", "close", "volume")}
    ours = _first(INDICATORS[name](LONG)) * peer.scale
    assert _rel(ours, _first(peer.call(arrs))) <= 1e-9, name


def test_mfi_agrees_with_talib_on_most_rows():
    arrs = {c: LONG[c].to_numpy() for c in ("high", "low", "close", "volume")}
    ours = _first(INDICATORS["mfi"](LONG))[WARMUP:]
    theirs = _first(TALIB["mfi"].call(arrs))[WARMUP:]
    ok = np.isfinite(ours) & np.isfinite(theirs)
    close = np.abs(ours[ok] - theirs[ok]) <= 1e-9 * np.mean(np.abs(theirs[ok]))
    assert close.mean() >= 0.99


@pytest.mark.parametrize("name", sorted(n for n, p in TALIB.items() if not p.same and n != "mfi"))
def test_talib_differs_where_the_oracle_table_says_so(name):
    """OBV, PSAR, Aroon (ties) and the composed EOM differ in TA-Lib (documented in the table); ours
    follow `ta`, so they must not silently agree with TA-Lib instead."""
    peer = TALIB[name]
    assert peer.note
    arrs = {c: LONG[c].to_numpy() for c in ("high", "low", "close", "volume")}
    ours, theirs = _first(INDICATORS[name](LONG))[WARMUP:], _first(peer.call(arrs))[WARMUP:]
    both = np.isfinite(ours) & np.isfinite(theirs)
    differ = both.sum() < 0.9 * np.isfinite(ours).sum() or \
        np.max(np.abs(ours[both] - theirs[both])) > 1e-6 * np.mean(np.abs(theirs[both]))
    assert differ, name
    assert mismatch(INDICATORS[name](LONG), ORACLES[name].reference(LONG)) is None


# ---------------------------------------------------------------- exact EWM replay
@pytest.mark.parametrize("name", ["rsi", "macd", "ema"])
def test_ewm_family_is_bit_for_bit_pandas_where_it_replays_it(name):
    """RSI and MACD replay pandas' EWM row (branch-free in steady state): the same bits as
    ta; EMA's four-rows-at-once form is within a few ulp."""
    for df in (LONG, make_ohlcv(3000, 12, price=0.05234, tick=1e-5)):
        ours = np.asarray(INDICATORS[name](df), dtype=float)
        ref = np.asarray(ORACLES[name].reference(df), dtype=float)
        if name == "ema":
            np.testing.assert_allclose(ours, ref, rtol=1e-14)
        else:
            np.testing.assert_array_equal(ours, ref)


@st.composite
def near_flat(draw):
    """Long enough for the steady-state loop: a price far from zero, moves of 0 or a few ulp to
    1e-9 relative, or extreme magnitudes."""
    n = draw(st.integers(40, 160))
    price = draw(st.sampled_from([1e-8, 0.001234, 65000.0, 3e9]))
    rel = draw(st.sampled_from([0.0, 1e-15, 1e-12, 1e-9, 1e-3]))
    steps = np.array(draw(st.lists(st.sampled_from([-1.0, 0.0, 0.0, 1.0, 2.0]),
                                   min_size=n, max_size=n)))
    close = price * (1.0 + rel * np.cumsum(steps))
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    high = close * (1 + rel)
    low = close * (1 - rel)
    return pd.DataFrame({"open": close, "high": high, "low": low, "close": close,
                         "volume": np.ones(n)}, index=idx)


@settings(max_examples=30, deadline=None)
@given(df=near_flat())
def test_fast_ewm_paths_match_the_oracle_on_near_flat_and_extreme_series(df):
    for name, p in (("rsi", {"window": 5}), ("macd", {"fast": 3, "slow": 7, "signal": 3}),
                    ("ema", {"window": 4}), ("atr", {"window": 4}), ("tsi", {"window": 5,
                                                                            "fast": 3})):
        msg = mismatch(INDICATORS[name](df, **p), ORACLES[name].reference(df, **p))
        assert msg is None, f"{name}{p}: {msg}"


def test_atr_nan_rows_take_tas_rule_and_keep_the_prefix():
    df = make_ohlcv(400, 13)
    df.iloc[200, df.columns.get_loc("high")] = np.nan
    full = INDICATORS["atr"](df).to_numpy()
    assert mismatch(INDICATORS["atr"](df), ORACLES["atr"].reference(df)) is None
    for k in (150, 199, 200, 201, 203):
        np.testing.assert_array_equal(INDICATORS["atr"](df.iloc[:k]).to_numpy(), full[:k])


# ---------------------------------------------------------------- kernel outputs
def test_multi_output_kernels_take_a_tuple_or_a_2d_array():
    c = LONG["close"].to_numpy()
    two = np.empty((3, len(c)))
    tup = (np.empty(len(c)), np.empty(len(c)), np.empty(len(c)))
    K.macd(c, 12, 26, 9, two)
    K.macd(c, 12, 26, 9, tup)
    np.testing.assert_array_equal(two, np.vstack(tup))


# ---------------------------------------------------------------- many series at once
TEN = ["sma", "ema", "rsi", "macd", "bbands", "atr", "stoch", "adx", "vwap", "obv"]


def _panel(n_sym: int, rows: int) -> pd.DataFrame:
    parts = {f"S{k}": make_ohlcv(rows, 100 + k, price=100.0 * (k + 1)) for k in range(n_sym)}
    return pd.concat(parts, names=["symbol"])


def test_many_symbols_on_threads_equal_each_symbol_alone():
    panel = _panel(8, 8000)                     # 64k rows: above PARALLEL_MIN_ROWS
    assert len(panel) >= OI.PARALLEL_MIN_ROWS
    out = add_indicators(panel, TEN + [("sma", {"window": 30})])
    for sym in ("S0", "S5", "S7"):
        alone = add_indicators(panel.xs(sym, level="symbol"), TEN + [("sma", {"window": 30})])
        got = out.xs(sym, level="symbol")
        pd.testing.assert_frame_equal(got, alone, check_exact=True)
    if OI._workers() >= 2:
        assert any(t.name.startswith("cryptolake-ind") for t in threading.enumerate())
    for name in ("rsi", "macd", "atr"):       # one indicator alone also runs per group
        got = INDICATORS[name](panel)
        assert mismatch(got, ORACLES[name].reference(panel)) is None


def test_add_indicators_on_one_long_series_equals_each_indicator_alone():
    df = make_ohlcv(60000, 14)
    out = add_indicators(df, TEN)
    for name in TEN:
        alone = INDICATORS[name](df)
        cols = alone.columns if isinstance(alone, pd.DataFrame) else [alone.name]
        for c in cols:
            exp = alone[c] if isinstance(alone, pd.DataFrame) else alone
            np.testing.assert_array_equal(out[c].to_numpy(), exp.to_numpy(), err_msg=c)


def test_add_indicators_errors_leave_no_deferred_state():
    df = make_ohlcv(300, 15)
    with pytest.raises(ValueError, match="unknown"):
        add_indicators(df, ["rsi", "nope"])
    with pytest.raises(ValueError, match="bad parameters"):
        add_indicators(df, ["rsi", ("macd", {"fats": 3})])
    assert getattr(OI._LOCAL, "jobs", None) is None
    assert np.isfinite(INDICATORS["rsi"](df).to_numpy()[20:]).all()   # computed right away


def test_unsorted_multiindex_is_still_rejected_by_the_fast_check():
    panel = _panel(2, 50)
    bad = pd.concat([panel.iloc[:30], panel.iloc[31:32], panel.iloc[30:31], panel.iloc[32:]])
    with pytest.raises(ValueError, match="increasing"):
        INDICATORS["rsi"](bad)
    with pytest.raises(ValueError, match="increasing"):
        add_indicators(bad, ["rsi", "sma"])


def test_bbands_std_is_no_worse_than_talib_against_the_exact_two_pass_value():
    """The accuracy contract's other half: a faster kernel may trade margin, never beyond
    TA-Lib's own distance from the exact standard deviation."""
    df = make_ohlcv(100_000, 16, price=60000.0, flat=(0.5, 300))
    x = df["close"].to_numpy()
    exact = np.lib.stride_tricks.sliding_window_view(x, 20).std(axis=1)
    ours = INDICATORS["bbands"](df, window=20)
    sd = ((ours["bb_upper"] - ours["bb_mid"]) / 2.0).to_numpy()[19:]
    up, mid, _ = talib.BBANDS(x, 20, 2.0, 2.0, 0)
    tl = ((up - mid) / 2.0)[19:]
    scale = np.mean(exact)
    err_ours = np.max(np.abs(sd - exact)) / scale
    err_talib = np.max(np.abs(tl - exact)) / scale
    assert err_ours <= err_talib, (err_ours, err_talib)
    assert np.array_equal(sd == 0, exact == 0) or err_ours < 1e-12

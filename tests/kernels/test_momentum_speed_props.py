"""The fast momentum kernels (rsi, macd, trix: speculative steady-state blocks; kama: direct
window sums in SIMD blocks) against `ta` on series long enough to run those blocks: near-flat
and extreme magnitudes (1e-8..3e9), flat runs, steps, NaN prefixes and NaN/inf rows inside;
prefix stability (no value depends on a later row, also around NaNs and block boundaries);
and KAMA no worse than TA-Lib against an extended-precision reference."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptolake.kernels import _ewm
from cryptolake.kernels import momentum as M
from cryptolake.ops.indicators import INDICATORS
from cryptolake.testing.oracles import ORACLES, mismatch

from .test_indicators import make_ohlcv

# longer than a steady-state block (and KAMA's), so every path runs: warm-up, blocks,
# a block rolled back to the general row, the replay with pandas' equality skip
assert M.EWM_BLOCK <= 600 and M.KAMA_BLOCK <= 600

CASES = [("rsi", {"window": 5}), ("rsi", {}), ("macd", {"fast": 3, "slow": 7, "signal": 3}),
         ("macd", {}), ("trix", {"window": 4}), ("trix", {}), ("kama", {}),
         ("kama", {"window": 5, "fast": 3, "slow": 20}), ("kama", {"window": 40}),
         ("stoch_rsi", {"window": 4, "smooth1": 2, "smooth2": 2}), ("tsi", {"window": 5, "fast": 3}),
         ("roc", {})]
SETTINGS = settings(max_examples=12, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _frame(close: np.ndarray) -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=len(close), freq="1min", tz="UTC")
    return pd.DataFrame({"open": close, "high": close, "low": close, "close": close,
                         "volume": np.ones(len(close))}, index=idx)


@st.composite
def long_series(draw, holes: bool = True):
    """1,300-1,900 rows: a price of 1e-8..3e9 moving by 0 to 1e-3 relative per row in steps
    (ulp-sized moves included), with flat runs long enough for the EMAs to reach the price,
    and optionally a NaN prefix, NaN/inf rows inside."""
    n = draw(st.integers(1300, 1900))
    price = draw(st.sampled_from([1e-8, 0.001234, 1.0, 65000.0, 3e9]))
    rel = draw(st.sampled_from([0.0, 1e-15, 1e-12, 1e-9, 1e-6, 1e-3]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    steps = rng.choice([-2.0, -1.0, 0.0, 0.0, 1.0, 3.0], size=n)
    for _ in range(draw(st.integers(0, 3))):            # flat runs
        a = int(rng.integers(0, n - 1))
        steps[a:a + int(rng.integers(50, 700))] = 0.0
    if draw(st.booleans()):                             # one step
        steps[int(rng.integers(0, n))] += 500.0
    close = price * (1.0 + rel * np.cumsum(steps))
    if holes:
        close[:draw(st.integers(0, 40))] = np.nan        # a NaN prefix
        for _ in range(draw(st.integers(0, 3))):
            close[int(rng.integers(0, n))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return close


@SETTINGS
@given(close=long_series())
def test_fast_kernels_match_ta_on_long_extreme_series(close):
    df = _frame(close)
    for name, p in CASES:
        msg = mismatch(INDICATORS[name](df, **p), ORACLES[name].reference(df, **p))
        assert msg is None, f"{name}{p}: {msg}"


@SETTINGS
@given(close=long_series(holes=False))
def test_ewm_family_is_bit_for_bit_ta_on_long_near_flat_series(close):
    """RSI, MACD and TRIX replay pandas' EWM rows exactly, also where a flat run brings an EMA
    onto the price (pandas' equality skip: the speculative block is replayed). stoch_rsi's
    raw ratio too (its flat windows divide RSI differences of a few ulp)."""
    df = _frame(close)
    for name, p in (("rsi", {}), ("macd", {"fast": 3, "slow": 7, "signal": 3}),
                    ("trix", {"window": 4}), ("stoch_rsi", {})):
        ours = INDICATORS[name](df, **p)
        ref = ORACLES[name].reference(df, **p)
        if name == "stoch_rsi":
            ours, ref = ours["stochrsi"], ref["stochrsi"]
        ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
        if name == "trix":
            ours, ref = ours[1:], ref[1:]                # row 0: ta's whole-series mean
        np.testing.assert_array_equal(ours, ref, err_msg=f"{name}{p}")


@pytest.mark.parametrize("name, p, price", [
    ("macd", {}, 14125.51), ("trix", {"window": 4}, 60186.38)])
def test_a_flat_start_takes_the_replay_and_stays_exact(name, p, price):
    """A series flat from its first row keeps every EMA exactly on the price in pandas (its
    equality skip), so MACD and TRIX are exactly 0 there. At these prices the row without
    the skip moves off the price ((1 - a) * c + a * c != c), so a kernel that left out the
    replay would not be 0."""
    alphas = [_ewm.alpha_from_span(w) for w in (p.get("fast", 12), p.get("slow", 26))] \
        if name == "macd" else [_ewm.alpha_from_span(p["window"])]
    assert any((1.0 - a) * price + a * price != price for a in alphas)
    walk = price * np.exp(np.cumsum(np.random.default_rng(5).normal(0, 1e-3, 1500)))
    df = _frame(np.r_[np.full(1500, price), walk])
    ours, ref = INDICATORS[name](df, **p), ORACLES[name].reference(df, **p)
    o = np.asarray(ours, dtype=float)[1:1500]
    r = np.asarray(ref, dtype=float)[1:1500]
    assert np.all(r[40:] == 0.0)                      # pandas' skip held the EMAs
    np.testing.assert_array_equal(o, r)
    np.testing.assert_array_equal(np.asarray(ours, dtype=float)[1:],
                                  np.asarray(ref, dtype=float)[1:])


@SETTINGS
@given(close=long_series(), data=st.data())
def test_prefix_stable_around_nans_and_block_edges(close, data):
    """f(x[:k]) == f(x)[:k]: the path a block takes (speculative, replayed, general) never
    depends on a later row."""
    k = data.draw(st.sampled_from([1, 37, M.EWM_BLOCK - 1, M.EWM_BLOCK + 1,
                                   M.KAMA_BLOCK + 9, len(close) - 1]))
    k = min(k, len(close))
    k2 = data.draw(st.integers(1, len(close)))
    df = _frame(close)
    for name, p in CASES:
        full = np.asarray(INDICATORS[name](df, **p), dtype=float)
        for kk in (k, k2):
            part = np.asarray(INDICATORS[name](df.iloc[:kk], **p), dtype=float)
            np.testing.assert_array_equal(part, full[:kk], err_msg=f"{name}{p} k={kk}")


@settings(max_examples=300, deadline=None)
@given(y=st.floats(-1e300, 1e300), x=st.floats(-1e300, 1e300),
       w=st.sampled_from([2, 3, 9, 12, 14, 26, 100]))
def test_plain_ewm_row_equals_the_exact_row_unless_it_hits(y, x, w):
    a = _ewm.alpha_from_span(w)
    f = 1.0 - a
    exact = _ewm.ewm_exact(y, x, f, a)
    if _ewm.ewm_hit(y, x):
        assert exact == y
    else:
        assert _ewm.ewm_plain(y, x, f, a) == exact


def _kama_longdouble(close, w=10, fast=2, slow=30):
    """ta's KAMA recurrence in extended precision (numpy longdouble), the exact reference."""
    c = close.astype(np.longdouble)
    fsc = np.longdouble(2) / (fast + 1)
    ssc = np.longdouble(2) / (slow + 1)
    vol = np.abs(np.diff(c, prepend=c[0]))
    out = np.full(len(c), np.nan, dtype=np.longdouble)
    k = c[w - 1]
    out[w - 1] = k
    for i in range(w, len(c)):
        den = vol[i - w + 1:i + 1].sum()
        er = abs(c[i] - c[i - w]) / den if den != 0 else np.longdouble(0)
        sc = (er * (fsc - ssc) + ssc) ** 2
        k = k + sc * (c[i] - k)
        out[i] = k
    return out


def test_kama_is_no_worse_than_talib_against_extended_precision():
    talib = pytest.importorskip("talib")
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        pytest.skip("no extended precision long double on this platform")
    df = make_ohlcv(20_000, 22, price=60000.0, flat=(0.5, 300))
    x = df["close"].to_numpy()
    exact = _kama_longdouble(x)[6000:]
    ours = INDICATORS["kama"](df).to_numpy()[6000:]
    tl = talib.KAMA(x, 10)[6000:]
    scale = float(np.mean(np.abs(exact)))
    err_ours = float(np.max(np.abs(ours - exact))) / scale
    err_talib = float(np.max(np.abs(tl - exact))) / scale
    assert err_ours <= max(err_talib, 4 * np.finfo(float).eps), (err_ours, err_talib)

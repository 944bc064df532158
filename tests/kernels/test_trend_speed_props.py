"""Properties of the fast trend/volatility kernels (sma, wma, bbands/rolling std, keltner):
no value depends on a later row, also when later rows are NaN/inf (the fast finite loops and
the NaN-aware loops must give the same bits); errors against exact references stay inside a
proven bound on extreme magnitudes (1e-8 .. 3e9) and near-flat series; no worse than TA-Lib
against the exact value on a long realistic series."""
from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryptolake.kernels import indicators as K
from cryptolake.kernels.rolling import _mean_block, _std_block
from cryptolake.ops.indicators import INDICATORS
from cryptolake.testing.oracles import ORACLES, mismatch

from .test_indicators import make_ohlcv

PROP = settings(max_examples=int(os.environ.get("CRYPTOLAKE_HYPOTHESIS_EXAMPLES", "40")),
                deadline=None, suppress_health_check=[HealthCheck.too_slow])
EPS = np.finfo(np.float64).eps


@st.composite
def series(draw, min_n=1, max_n=2600):
    """A random walk at one magnitude (1e-8 .. 3e9), near-flat or on a tick grid, with runs of
    equal values and, sometimes, NaN/inf rows sprinkled in or a NaN prefix."""
    n = draw(st.integers(min_n, max_n))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    level = draw(st.sampled_from([1e-8, 3e-3, 1.0, 3e4, 3e9]))
    kind = draw(st.sampled_from(["walk", "flat", "tick", "jump"]))
    if kind == "walk":
        x = level * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    elif kind == "flat":                  # near-flat: spread ~1e-12 relative
        x = level * (1.0 + 1e-12 * np.cumsum(rng.integers(-1, 2, n)))
    elif kind == "tick":                  # many equal neighbours, runs of equal values
        x = level * (1.0 + 1e-3 * np.cumsum(rng.integers(-1, 2, n) * (rng.random(n) < 0.3)))
    else:                                 # a big level shift, then near-flat
        x = level * (1.0 + 1e-12 * np.cumsum(rng.integers(-1, 2, n)))
        x[n // 2:] *= 1e4
    holes = draw(st.sampled_from(["none", "nan", "inf", "prefix"]))
    if holes == "nan":
        x[rng.random(n) < 0.01] = np.nan
    elif holes == "inf":
        x[rng.random(n) < 0.005] = np.inf
        x[rng.random(n) < 0.005] = np.nan
    elif holes == "prefix":
        x[: int(rng.integers(0, n + 1))] = np.nan
    return x


def _prefix_stable(fn, x, ks, nout=1):
    full = [np.empty(len(x)) for _ in range(nout)]
    fn(x, *full)
    for k in ks:
        part = [np.empty(k) for _ in range(nout)]
        fn(x[:k], *part)
        for a, b in zip(part, full, strict=True):
            np.testing.assert_array_equal(a, b[:k], err_msg=f"prefix {k}")


# ---------------------------------------------------------------- look-ahead with NaN rows
def test_rolling_std_last_bit_does_not_depend_on_a_later_nan():
    """The defect: a later NaN in the same block switched the block to another loop whose
    arithmetic differed in the last bit. Here the NaN sits 60 rows after the prefix ends."""
    rng = np.random.default_rng(0)
    x = np.round(30000 * np.exp(np.cumsum(rng.normal(0, 1e-3, 1200))), 2)
    x[460] = np.nan
    for w in (5, 20):
        _prefix_stable(lambda a, m, s, w=w: K.rolling_mean_std(a, w, w, 0, m, s), x,
                       [300, 400, 459, 460, 461], nout=2)


@PROP
@given(x=series(), w=st.integers(1, 40), data=st.data())
def test_window_kernels_are_prefix_stable_with_nan_and_inf(x, w, data):
    minp = data.draw(st.integers(0, w))
    ks = sorted({data.draw(st.integers(1, len(x))) for _ in range(3)})
    _prefix_stable(lambda a, o: K.rolling_mean(a, w, minp, o), x, ks)
    _prefix_stable(lambda a, m, s: K.rolling_mean_std(a, w, minp, 0, m, s), x, ks, nout=2)
    _prefix_stable(lambda a, m, u, d: K.bbands(a, w, 2.0, (m, u, d)), x, ks, nout=3)
    _prefix_stable(lambda a, o: K.wma(a, w, o), x, ks)
    _prefix_stable(lambda a, o: K.ewm_mean(a, K.alpha_from_span(w), w, o), x, ks)
    hi, lo = x * 1.001, x * 0.999
    _prefix_stable(lambda a, m, u, d: K.keltner(hi[:len(a)], lo[:len(a)], a, w, 3, 2.0, True,
                                                (m, u, d)), x, ks, nout=3)


def test_long_windows_cross_blocks_without_look_ahead():
    """Windows longer than the restart block and NaNs on both sides of a block boundary."""
    rng = np.random.default_rng(5)
    x = 100 + np.cumsum(rng.normal(0, 1, 5000))
    x[[1023, 1024, 2100, 3071]] = np.nan
    for w in (3, 700, 1500):
        ks = [1000, 1023, 1024, 1025, 2048, 2101, 3072, 4999]
        _prefix_stable(lambda a, o, w=w: K.rolling_mean(a, w, 1, o), x, ks)
        _prefix_stable(lambda a, m, s, w=w: K.rolling_mean_std(a, w, 1, 1, m, s), x, ks, nout=2)
        _prefix_stable(lambda a, o, w=w: K.wma(a, w, o), x, ks)


# ---------------------------------------------------------------- accuracy against exact values
def _exact_means(x, w, minp):
    out = np.full(len(x), np.nan)
    for i in range(len(x)):
        v = x[max(i - w + 1, 0): i + 1]
        v = v[np.isfinite(v)]
        if len(v) >= max(minp, 1):
            out[i] = math.fsum(v.tolist()) / len(v)
    return out


@PROP
@given(x=series(max_n=1500), w=st.integers(1, 30), data=st.data())
def test_rolling_mean_within_its_error_bound_of_the_exact_mean(x, w, data):
    """The running sum restarts every B rows from an in-order sum of its window, so each value
    comes from at most w + 2B roundings of partial sums bounded by w * max|x|: the mean is
    within (w + 2B) * eps * max|x| of exact (recursive summation bound), whatever the
    magnitude. A window of equal values gives exactly that value."""
    minp = data.draw(st.integers(0, w))
    out = np.empty(len(x))
    K.rolling_mean(x, w, minp, out)
    ref = _exact_means(x, w, minp)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    fin = np.isfinite(x)
    if not fin.any():
        return
    bound = (w + 2 * _mean_block(w)) * EPS * np.max(np.abs(x[fin]))
    ok = np.isfinite(ref)
    assert np.all(np.abs(out[ok] - ref[ok]) <= bound)
    for i in np.flatnonzero(ok):
        win = x[max(i - w + 1, 0): i + 1]
        win = win[np.isfinite(win)]
        if np.all(win == win[0]):
            assert out[i] == win[0], i


@PROP
@given(x=series(max_n=1200), w=st.integers(2, 30))
def test_rolling_std_close_to_the_exact_two_pass_value(x, w):
    """Near-flat, shifted and extreme series: the std is within 1e-9 relative of the exact
    two-pass value of each window (pandas' own online std is not: see the bbands tests)."""
    m = np.empty(len(x))
    s = np.empty(len(x))
    K.rolling_mean_std(x, w, w, 0, m, s)
    xs = pd.Series(x).replace([np.inf, -np.inf], np.nan)
    ref = xs.rolling(w, min_periods=w).apply(
        lambda a: math.sqrt(math.fsum(((a - math.fsum(a) / len(a)) ** 2).tolist()) / len(a)),
        raw=True).to_numpy()
    np.testing.assert_array_equal(np.isnan(s), np.isnan(ref))
    ok = np.isfinite(ref)
    if ok.any():
        scale = np.abs(xs.rolling(w).mean().to_numpy()[ok]) * 1e-15 + ref[ok] * 1e-9
        assert np.all(np.abs(s[ok] - ref[ok]) <= scale + 1e-300)


def test_partial_windows_of_equal_values_give_that_value():
    """min_periods below the window: a partial window of equal values (rows before w - 1) is
    exactly its value, and its std exactly 0 (the run test once compared with row i - w + 1,
    negative there)."""
    x = np.array([1.001e-08, 1.001e-08, 1.001e-08, np.nan, 1.001e-08])
    out = np.empty(5)
    K.rolling_mean(x, 4, 0, out)
    np.testing.assert_array_equal(out, [x[0]] * 5)
    m, s = np.empty(5), np.empty(5)
    K.rolling_mean_std(x, 4, 1, 0, m, s)
    np.testing.assert_array_equal(m, [x[0]] * 5)
    np.testing.assert_array_equal(s, [0.0] * 5)


def test_restart_blocks_are_what_the_bounds_assume():
    assert _mean_block(12) == 1024 and _mean_block(5000) == 5000
    assert _std_block(20) == 512 and _std_block(900) == 900


# ---------------------------------------------------------------- against TA-Lib's accuracy
talib = pytest.importorskip("talib")


def test_sma_is_no_worse_than_talib_against_the_exact_mean():
    df = make_ohlcv(100_000, 17, price=60000.0, flat=(0.5, 300))
    x = df["close"].to_numpy()
    w = 12
    exact = np.array([math.fsum(x[i:i + w].tolist()) / w for i in range(len(x) - w + 1)])
    ours = INDICATORS["sma"](df, window=w).to_numpy()[w - 1:]
    tl = talib.SMA(x, w)[w - 1:]
    err_ours = np.max(np.abs(ours - exact))
    err_talib = np.max(np.abs(tl - exact))
    assert err_ours <= max(err_talib, 2 * np.spacing(np.max(x))), (err_ours, err_talib)


def test_wma_is_no_worse_than_talib_against_the_exact_value():
    """The weighted sum integrates the plain sum's rounding errors: 1024-row restart blocks
    were 9e-13 relative off exact here, TA-Lib 2.2e-14."""
    df = make_ohlcv(100_000, 16, price=60000.0, flat=(0.5, 300))
    x = df["close"].to_numpy()
    w = 9
    wts = np.arange(1, w + 1.0)
    exact = np.array([math.fsum((x[i:i + w] * wts).tolist()) / wts.sum()
                      for i in range(len(x) - w + 1)])
    ours = INDICATORS["wma"](df, window=w).to_numpy()[w - 1:]
    tl = talib.WMA(x, w)[w - 1:]
    assert np.max(np.abs(ours - exact)) <= np.max(np.abs(tl - exact))


def test_wma_and_keltner_still_match_their_oracles_with_nan_rows():
    df = make_ohlcv(3000, 19)
    df.iloc[[100, 1500, 1501, 2047], df.columns.get_loc("close")] = np.nan
    df.iloc[[700, 2048], df.columns.get_loc("high")] = np.inf
    for name, p in (("wma", {"window": 9}), ("keltner", {}), ("keltner", {"k": 1.5}),
                    ("sma", {"window": 20}), ("bbands", {})):
        msg = mismatch(INDICATORS[name](df, **p), ORACLES[name].reference(df, **p))
        assert msg is None, f"{name}{p}: {msg}"

"""The volume kernels behind `df.lake.indicators` (vwap, cmf, mfi): prefix-stable with NaNs,
zero-volume windows NaN as in ta, and no further from an exact reference than TA-Lib is."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import talib

import cryptolake.accessors  # noqa: F401
from cryptolake.kernels import indicators as K
from cryptolake.testing.oracles import ORACLES, TALIB, assert_matches


def _frame(n: int, seed: int, nans: bool = True, regime: bool = True) -> pd.DataFrame:
    """A walk with a volume regime change (1e6-sized bars, then 1e-3-sized ones: running
    sums cancel), zero-volume runs, lone zero bars and, optionally, NaN rows."""
    rng = np.random.default_rng(seed)
    close = np.round(50000.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n))), 2)
    open_ = np.r_[close[:1], close[:-1]]
    high = np.maximum(open_, close) + np.round(rng.exponential(5.0, n), 2)
    low = np.minimum(open_, close) - np.round(rng.exponential(5.0, n), 2)
    volume = np.round(rng.lognormal(1.0, 1.0, n), 3) * (rng.random(n) > 0.05)
    if regime:
        volume[n // 5: n // 5 + 200] *= 1e6
        volume[n // 5 + 200: n // 5 + 400] *= 1e-3
    volume[n // 2: n // 2 + 50] = 0.0
    if nans:
        for j in rng.choice(n, 6, replace=False):
            [high, low, close, volume][j % 4][j] = np.nan
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC", name="open_time")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": volume}, index=idx)


@pytest.mark.parametrize("name,window", [("vwap", 14), ("vwap", 3), ("cmf", 20), ("mfi", 14),
                                         ("mfi", 5)])
def test_prefix_stable_with_nans(name, window):
    df = _frame(3000, 1)
    full = getattr(df.lake.indicators, name)(window=window).to_numpy()
    for k in (1, window - 1, window, 601, 615, 1500, 1520, 2999):
        part = getattr(df.iloc[:k].lake.indicators, name)(window=window).to_numpy()
        np.testing.assert_array_equal(part, full[:k], err_msg=f"{name} prefix {k}")


@pytest.mark.parametrize("name", ["vwap", "cmf", "mfi"])
def test_matches_ta_across_regime_changes_and_long_runs(name):
    df = _frame(140_000, 2, nans=True)          # crosses the periodic re-sum twice
    o = ORACLES[name]
    for params in o.params:
        ours = getattr(df.lake.indicators, name)(**params)
        assert_matches(ours, o.reference(df, **params))


def test_zero_volume_window_is_nan_and_volume_returning_is_exact():
    df = _frame(400, 3, nans=False)
    df.iloc[100:130, df.columns.get_loc("volume")] = 0.0
    v = df.lake.indicators.vwap(window=14).to_numpy()
    assert np.isnan(v[113:130]).all() and np.isfinite(v[112]) and np.isfinite(v[130])
    h, l, c, vol = (df[k].to_numpy()[130] for k in ("high", "low", "close", "volume"))
    assert v[130] == ((h + l + c) / 3.0 * vol) / vol      # one traded bar: exactly its tp
    m = df.lake.indicators.cmf(window=20).to_numpy()
    assert np.isnan(m[119:130]).all() and np.isfinite(m[130])


def _exact_vwap(df, w):
    h, l, c, v = (df[k].to_numpy() for k in ("high", "low", "close", "volume"))
    pv = (h + l + c) / 3.0 * v
    out = np.full(len(v), np.nan)
    for i in range(w - 1, len(v)):
        den = math.fsum(v[i - w + 1:i + 1])
        out[i] = math.fsum(pv[i - w + 1:i + 1]) / den if den else np.nan
    return out


def test_vwap_no_further_from_exact_than_talib():
    df = _frame(70_000, 4, nans=False)
    exact = _exact_vwap(df, 14)
    ours = df.lake.indicators.vwap(window=14).to_numpy()
    tl = TALIB["vwap"].call({k: df[k].to_numpy() for k in ("high", "low", "close", "volume")})
    ok = np.isfinite(exact) & np.isfinite(tl)
    scale = np.mean(np.abs(exact[ok]))
    err_ours = np.max(np.abs(ours[ok] - exact[ok])) / scale
    err_tl = np.max(np.abs(tl[ok] - exact[ok])) / scale
    assert np.array_equal(np.isnan(ours), np.isnan(exact))
    assert err_ours <= max(err_tl, 1e-15), (err_ours, err_tl)


def test_mfi_agrees_with_talib_on_traded_windows():
    df = _frame(20_000, 5, nans=False, regime=False)   # TA-Lib's running sums drift there
    df["volume"] = df["volume"].where(df["volume"] > 0, 1.0)   # TA-Lib differs on 0 volume
    ours = df.lake.indicators.mfi(window=14).to_numpy()
    tl = talib.MFI(*(df[k].to_numpy() for k in ("high", "low", "close", "volume")), 14)
    ok = np.isfinite(ours) & np.isfinite(tl)
    assert ok.sum() > 19_000
    np.testing.assert_allclose(ours[ok], tl[ok], rtol=0, atol=1e-9 * 50)


def test_raw_kernels_fill_every_row():
    df = _frame(500, 6)
    h, l, c, v = (df[k].to_numpy() for k in ("high", "low", "close", "volume"))
    for fn, args in ((K.vwap, (h, l, c, v, 14)), (K.cmf, (h, l, c, v, 20)),
                     (K.mfi, (h, l, c, v, 14))):
        out = np.full(len(c), 12345.0)
        fn(*args, out)
        assert not (out == 12345.0).any()

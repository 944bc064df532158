"""Volume kernels: vwap, obv, mfi, cmf, force_index, eom. Float64 arrays in, preallocated
outputs written. Imports only numpy, numba and our own kernels."""
from __future__ import annotations

import numpy as np

from ._jit import jit, register_warmup
from ._ewm import ewm_step
from ._sums import np_sum
from .rolling import gsum_step, gsum_value, rolling_mean

NAN = np.nan


@jit(inline="always")
def _tp(high, low, close, i):
    return (high[i] + low[i] + close[i]) / 3.0


@jit
def vwap(high, low, close, volume, window, out):
    """`ta.volume.VolumeWeightedAveragePrice(high, low, close, volume, window)`: rolling sum of
    tp * volume over rolling sum of volume (a window of zero volume gives 0/0 = NaN as in ta)."""
    _flow_over_volume(high, low, close, volume, window, out, _VWAP)


@jit
def obv(close, volume, out):
    """`ta.volume.OnBalanceVolumeIndicator(close, volume).on_balance_volume()`: running sum of
    -volume where close fell, +volume otherwise (row 0 counts +volume); NaN volume rows are NaN
    and skipped, like pandas cumsum."""
    tot = 0.0
    for i in range(close.shape[0]):
        v = volume[i]
        x = -v if (i > 0 and close[i] < close[i - 1]) else v
        if x == x:
            tot += x
            out[i] = tot
        else:
            out[i] = NAN


@jit
def mfi(high, low, close, volume, window, out):
    """`ta.volume.MFIIndicator(high, low, close, volume, window).money_flow_index()`:
    money flow tp * volume signed by the move of tp; 100 - 100 / (1 + sum(+) / |sum(-)|) over
    the window. Running Kahan sums; a sum is rebuilt exactly (numpy's pairwise order, as ta
    sums each window) when removing a row cancels most of it, and is exactly 0 when no
    nonzero term is left, so zero-volume windows give NaN and tiny flows keep their ratio."""
    n = close.shape[0]
    pos = np.empty(n)
    neg = np.empty(n)
    prev = NAN
    for i in range(n):
        tp = (high[i] + low[i] + close[i]) / 3.0
        ud = 1.0 if tp > prev else (-1.0 if tp < prev else 0.0)
        m = tp * volume[i] * ud
        prev = tp
        if m - m != 0.0:                  # NaN or inf: missing, as in pandas
            pos[i] = NAN
            neg[i] = NAN
        elif m >= 0.0:
            pos[i] = m
            neg[i] = 0.0
        else:
            pos[i] = 0.0
            neg[i] = m
    ps = 0.0
    pc = 0.0
    pnz = 0
    ns = 0.0
    nc = 0.0
    nnz = 0
    nans = 0
    for i in range(n):
        p = pos[i]
        if p != p:
            nans += 1
        else:
            if p != 0.0:
                pnz += 1
            y = p - pc
            t = ps + y
            pc = (t - ps) - y
            ps = t
            q = neg[i]
            if q != 0.0:
                nnz += 1
            y = q - nc
            t = ns + y
            nc = (t - ns) - y
            ns = t
        if i >= window:
            p = pos[i - window]
            if p != p:
                nans -= 1
            else:
                q = neg[i - window]
                if p != 0.0:
                    pnz -= 1
                    y = -p - pc
                    t = ps + y
                    pc = (t - ps) - y
                    ps = t
                    if pnz > 0 and abs(ps) < 1e-6 * p and nans == 0:
                        ps = np_sum(pos, i - window + 1, window)
                        pc = 0.0
                if q != 0.0:
                    nnz -= 1
                    y = -q - nc
                    t = ns + y
                    nc = (t - ns) - y
                    ns = t
                    if nnz > 0 and abs(ns) < -1e-6 * q and nans == 0:
                        ns = np_sum(neg, i - window + 1, window)
                        nc = 0.0
        if pnz == 0:
            ps = 0.0
            pc = 0.0
        if nnz == 0:
            ns = 0.0
            nc = 0.0
        if i >= window - 1 and nans == 0:
            out[i] = 100.0 - 100.0 / (1.0 + ps / abs(ns))
        else:
            out[i] = NAN


@jit(inline="always")
def _mfv(high, low, close, volume, i):
    m = ((close[i] - low[i]) - (high[i] - close[i])) / (high[i] - low[i])
    return (0.0 if m != m else m) * volume[i]


@jit
def cmf(high, low, close, volume, window, out):
    """`ta.volume.ChaikinMoneyFlowIndicator(high, low, close, volume, window)`: rolling sum of
    money-flow volume ((c - l) - (h - c)) / (h - l) * volume (0/0 counts 0) over rolling sum
    of volume."""
    _flow_over_volume(high, low, close, volume, window, out, _CMF)


_VWAP, _CMF = 0, 1


@jit(inline="always")
def _flow(kind, high, low, close, volume, i):
    return _tp(high, low, close, i) * volume[i] if kind == _VWAP else _mfv(high, low, close, volume, i)


@jit
def _flow_over_volume(high, low, close, volume, window, out, kind):
    """Rolling sum of a per-row flow (vwap: tp * volume; cmf: money-flow volume) over the
    rolling sum of volume: two guarded running sums in one pass, re-summed exactly when a
    guard fires. vwap's flow treats NaN as missing like pandas; cmf's counts it as 0."""
    n = close.shape[0]
    w = window
    sp = 0.0
    bp = 0.0
    np_ = 0
    lp = -1
    pp = NAN
    sv = 0.0
    bv = 0.0
    nv = 0
    lv = -1
    pv_ = NAN
    for i in range(n):
        p = _flow(kind, high, low, close, volume, i)
        q = _flow(kind, high, low, close, volume, i - w) if i >= w else NAN
        sp, bp, np_, lp, pp, rp = gsum_step(sp, bp, np_, lp, pp, p, q, i, w, kind == _VWAP)
        v = volume[i]
        u = volume[i - w] if i >= w else NAN
        sv, bv, nv, lv, pv_, rv = gsum_step(sv, bv, nv, lv, pv_, v, u, i, w, True)
        if rp or rv:
            sp = 0.0
            sv = 0.0
            for j in range(max(i - w + 1, 0), i + 1):
                t = _flow(kind, high, low, close, volume, j)
                sp += t if t - t == 0.0 else 0.0
                t = volume[j]
                sv += t if t - t == 0.0 else 0.0
            bp = abs(sp)
            bv = abs(sv)
        out[i] = gsum_value(sp, np_, lp, pp, i, w, w) / gsum_value(sv, nv, lv, pv_, i, w, w)


@jit
def force_index(close, volume, window, out):
    """`ta.volume.ForceIndexIndicator(close, volume, window).force_index()`: EMA (span=window,
    min_periods=window) of (c - c[t-1]) * volume."""
    a = 1.0 / (1.0 + (window - 1) / 2.0)
    e = NAN
    wt = 1.0
    nobs = 0
    prev = NAN
    for i in range(close.shape[0]):
        e, wt, nobs = ewm_step(e, wt, nobs, (close[i] - prev) * volume[i], a)
        prev = close[i]
        out[i] = e if nobs >= window else NAN


@jit
def eom(high, low, volume, window, out):
    """`ta.volume.EaseOfMovementIndicator(high, low, volume, window).sma_ease_of_movement()`:
    rolling mean of (dh + dl) * (h - l) / (2 volume) * 1e8."""
    n = high.shape[0]
    e = np.empty(n)
    for i in range(n):
        if i == 0:
            e[i] = NAN
        else:
            e[i] = ((high[i] - high[i - 1]) + (low[i] - low[i - 1])) * (high[i] - low[i]) \
                / (2 * volume[i]) * 100000000
    rolling_mean(e, window, window, out)


@register_warmup
def _warm():
    h = np.array([2.0, 3.0, 4.0, 3.5, 5.0, 4.0, 6.0, 5.5])
    l = h - 1.0
    c = h - 0.5
    v = np.array([1.0, 0.0, 2.0, 3.0, 0.0, 1.0, 2.0, 1.0])
    o = np.empty_like(c)
    vwap(h, l, c, v, 3, o)
    obv(c, v, o)
    mfi(h, l, c, v, 3, o)
    cmf(h, l, c, v, 3, o)
    force_index(c, v, 3, o)
    eom(h, l, v, 3, o)

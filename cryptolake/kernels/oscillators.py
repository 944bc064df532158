"""Range and oscillator kernels on high/low/close: stoch, williams_r, cci, adx, aroon, psar,
ultimate oscillator.

Each reads float64 arrays and writes into preallocated outputs (`out` 1-D, or a tuple of 1-D
arrays, one per output column). Each docstring names the `ta` call it reproduces (with
`fillna=False`). Imports only numpy, numba and our own kernels.
"""
from __future__ import annotations

import numpy as np

from ._jit import jit, register_warmup
from ._sums import np_block, np_sum
from .rolling import (
    hilo_block,
    hilo_scratch,
    rolling_max,
    rolling_mean,
    rolling_mean_exact,
    rolling_min,
    rolling_sum,
)

NAN = np.nan


_K, _R = 0, 1     # stochastic %K, Williams %R


@jit(inline="always")
def _position(kind, c, hi, lo):
    if kind == _K:
        return 100.0 * (c - lo) / (hi - lo)
    return -100.0 * (hi - c) / (hi - lo)


@jit
def _range_position(high, low, close, window, kind, out, scratch):
    """Where the close sits in the rolling high-low range (%K or %R) into `out`. Finite
    high/low: one pass (`hilo_block`); otherwise NaN-aware rolling max/min first, with
    `scratch` (a length-n array) holding the highest high."""
    n = close.shape[0]
    sh, sl, hh, ll = hilo_scratch(window)
    ok = True
    for b0 in range(0, n, window):
        ok = hilo_block(high, low, b0, window, sh, sl, hh, ll)
        if not ok:
            break
        for t in range(min(window, n - b0)):
            out[b0 + t] = _position(kind, close[b0 + t], hh[t], ll[t])
    if not ok:
        rolling_max(high, window, window, scratch)
        rolling_min(low, window, window, out)
        for i in range(n):
            out[i] = _position(kind, close[i], scratch[i], out[i])


@jit
def stoch(high, low, close, window, smooth, out):
    """`ta.momentum.StochasticOscillator(high, low, close, window, smooth_window=smooth)`:
    rows stoch() (%K) and stoch_signal() (%D = rolling mean of %K)."""
    _range_position(high, low, close, window, _K, out[0], out[1])   # out[1] as scratch
    rolling_mean(out[0], smooth, smooth, out[1])


@jit
def williams_r(high, low, close, window, out):
    """`ta.momentum.WilliamsRIndicator(high, low, close, lbp=window).williams_r()`."""
    # the scratch's pages are only touched (paid for) on the NaN fallback
    _range_position(high, low, close, window, _R, out, np.empty_like(out))


@jit
def cci(high, low, close, window, c, out):
    """`ta.trend.CCIIndicator(high, low, close, window, constant=c).cci()`:
    (tp - rolling mean tp) / (c * mean absolute deviation), tp = (h + l + c) / 3. The mean
    deviation replays numpy's pairwise sums, as ta computes it with np.mean per window
    (O(n * window): there is no running form of it); four rows at a time where their windows
    are full, each row's sums in the same order as alone."""
    n = close.shape[0]
    tp = np.empty(n)
    for i in range(n):
        tp[i] = (high[i] + low[i] + close[i]) / 3.0
    rolling_mean_exact(tp, window, window, out)
    w = window
    i = 0
    while i < n:
        if i + 4 <= n and w <= 128 and (out[i] == out[i]) & (out[i + 1] == out[i + 1]) \
                & (out[i + 2] == out[i + 2]) & (out[i + 3] == out[i + 3]):
            # four rows at once: four independent sums (each in the row-by-row order, so the
            # same bits) keep the adder busy instead of waiting on one chain
            x = tp[i - w + 1:i + 4]      # (a slice: indices from 0 need no wraparound)
            mu0 = np_block(x, 0, w) / w  # np_sum's own block sum (w <= 128), inlined
            mu1 = np_block(x, 1, w) / w
            mu2 = np_block(x, 2, w) / w
            mu3 = np_block(x, 3, w) / w
            d0 = 0.0
            d1 = 0.0
            d2 = 0.0
            d3 = 0.0
            for j in range(w):
                d0 += abs(x[j] - mu0)
                d1 += abs(x[j + 1] - mu1)
                d2 += abs(x[j + 2] - mu2)
                d3 += abs(x[j + 3] - mu3)
            out[i] = (tp[i] - out[i]) / (c * (d0 / w))
            out[i + 1] = (tp[i + 1] - out[i + 1]) / (c * (d1 / w))
            out[i + 2] = (tp[i + 2] - out[i + 2]) / (c * (d2 / w))
            out[i + 3] = (tp[i + 3] - out[i + 3]) / (c * (d3 / w))
            i += 4
            continue
        m = out[i]
        if m == m:
            lo = i - w + 1
            # the window mean bit for bit as np.mean (it decides whether a flat window's
            # deviation is 0 or one ulp); the deviations' sum needs no such care
            mu = np_sum(tp, lo, w) / w
            dev = 0.0
            for j in range(lo, i + 1):
                dev += abs(tp[j] - mu)
            out[i] = (tp[i] - m) / (c * (dev / w))
        i += 1


@jit
def adx(high, low, close, window, out):
    """`ta.trend.ADXIndicator(high, low, close, window)`: rows adx(), adx_pos(), adx_neg(),
    ta's Wilder sums and seeding in one pass (ta's divisions by the window as multiplies by
    its reciprocal: within an ulp per step, and the sums contract). As in ta, the warm-up rows
    are 0 (not NaN): adx before row 2*window-1, adx_pos/adx_neg up to row window.
    Expects finite inputs (ta drops NaN rows before seeding)."""
    n = close.shape[0]
    w = window
    fw = float(w)
    for i in range(n):
        out[0][i] = 0.0
        out[1][i] = 0.0
        out[2][i] = 0.0
    if n <= w:
        return
    buf = np.empty(n)                    # dm / pos / neg seeds and then the DI values
    trs = 0.0
    dip = 0.0
    din = 0.0
    # seeds: pandas .sum() of rows 1..w (pairwise order)
    for i in range(1, w + 1):
        pc = close[i - 1]
        buf[i] = max(high[i], pc) - min(low[i], pc)
    trs = np_sum(buf, 1, w)
    for i in range(1, w + 1):
        up = high[i] - high[i - 1]
        dn = low[i - 1] - low[i]
        buf[i] = up if (up > dn and up > 0) else 0.0
    dip = np_sum(buf, 1, w)
    for i in range(1, w + 1):
        up = high[i] - high[i - 1]
        dn = low[i - 1] - low[i]
        buf[i] = dn if (dn > up and dn > 0) else 0.0
    din = np_sum(buf, 1, w)
    adxv = 0.0
    inv = 1.0 / fw                       # ta divides by the window; a multiply is ~1 ulp off
    for p in range(w, n):                # p: output row of trs[p - w]
        if p > w:
            pc = close[p - 1]
            dm = max(high[p], pc) - min(low[p], pc)
            up = high[p] - high[p - 1]
            dn = low[p - 1] - low[p]
            pos = up if ((up > dn) & (up > 0)) else 0.0     # & (not `and`): selects, not
            neg = dn if ((dn > up) & (dn > 0)) else 0.0     # branches that mispredict
            trs = trs - trs * inv + dm
            dip = dip - dip * inv + pos
            din = din - din * inv + neg
        r = 100.0 / trs
        dpos = dip * r if trs != 0 else 0.0
        dneg = din * r if trs != 0 else 0.0
        if p > w:
            out[1][p] = dpos
            out[2][p] = dneg
        s = dpos + dneg
        dx = 100.0 * abs((dpos - dneg) / s)
        buf[p] = dx if s != 0 else 0.0
        if p == 2 * w - 1:
            adxv = np_sum(buf, w, w) / w
            out[0][p] = adxv
        elif p > 2 * w - 1:
            adxv = ((adxv * (w - 1)) + buf[p]) * inv
            out[0][p] = adxv


@jit
def aroon(high, low, window, out):
    """`ta.trend.AroonIndicator(high, low, window)`: rows aroon_up(), aroon_down() =
    100 * (position of the first max / min in the last window+1 rows) / window. Monotonic
    deques, O(n); NaN when the span holds a NaN."""
    n = high.shape[0]
    span = window + 1
    for k in range(2):
        x = high if k == 0 else low
        q = np.empty(span + 1, np.int64)
        head = 0
        size = 0
        cap = span + 1
        nans = 0
        for i in range(n):
            if i - span >= 0:
                if x[i - span] - x[i - span] != 0.0:
                    nans -= 1
                if size > 0 and q[head] <= i - span:
                    head = (head + 1) % cap
                    size -= 1
            v = x[i]
            if v - v != 0.0:
                nans += 1
            else:
                while size > 0:
                    last = x[q[(head + size - 1) % cap]]
                    if (k == 0 and last < v) or (k == 1 and last > v):
                        size -= 1
                    else:
                        break
                q[(head + size) % cap] = i
                size += 1
            if i >= span - 1 and nans == 0:
                out[k][i] = float(q[head] - (i - span + 1)) / window * 100.0
            else:
                out[k][i] = NAN


@jit
def psar(high, low, close, step, max_step, out):
    """`ta.trend.PSARIndicator(high, low, close, step, max_step)`: rows psar(), psar_up(),
    psar_down(), the same loop as ta (rows 0 and 1 of psar are the close)."""
    n = close.shape[0]
    ps = out[0]
    pu = out[1]
    pd_ = out[2]
    for i in range(n):
        ps[i] = close[i]
        pu[i] = NAN
        pd_[i] = NAN
    if n == 0:
        return
    up_trend = True
    af = step
    up_high = high[0]
    down_low = low[0]
    for i in range(2, n):
        reversal = False
        max_high = high[i]
        min_low = low[i]
        if up_trend:
            ps[i] = ps[i - 1] + (af * (up_high - ps[i - 1]))
            if min_low < ps[i]:
                reversal = True
                ps[i] = up_high
                down_low = min_low
                af = step
            else:
                if max_high > up_high:
                    up_high = max_high
                    af = min(af + step, max_step)
                if low[i - 2] < ps[i]:
                    ps[i] = low[i - 2]
                elif low[i - 1] < ps[i]:
                    ps[i] = low[i - 1]
        else:
            ps[i] = ps[i - 1] - (af * (ps[i - 1] - down_low))
            if max_high > ps[i]:
                reversal = True
                ps[i] = down_low
                up_high = max_high
                af = step
            else:
                if min_low < down_low:
                    down_low = min_low
                    af = min(af + step, max_step)
                if high[i - 2] > ps[i]:
                    ps[i] = high[i - 2]
                elif high[i - 1] > ps[i]:
                    ps[i] = high[i - 1]
        up_trend = up_trend != reversal
        if up_trend:
            pu[i] = ps[i]
        else:
            pd_[i] = ps[i]


@jit
def ultimate_oscillator(high, low, close, w1, w2, w3, k1, k2, k3, out):
    """`ta.momentum.UltimateOscillator(high, low, close, window1=w1, window2=w2, window3=w3,
    weight1=k1, weight2=k2, weight3=k3).ultimate_oscillator()`."""
    n = close.shape[0]
    bp = np.empty(n)
    tr = np.empty(n)
    for i in range(n):
        pc = close[i - 1] if i > 0 else NAN
        h = high[i]
        l = low[i]
        t = h - l
        if pc == pc:
            t = max(t, abs(h - pc), abs(l - pc))
        tr[i] = t
        bp[i] = close[i] - (min(l, pc) if (pc == pc and l == l) else NAN)
    a = np.empty(n)
    b = np.empty(n)
    for i in range(n):
        out[i] = 0.0
    ws = (w1, w2, w3)
    ks = (k1, k2, k3)
    for j in range(3):
        rolling_sum(bp, ws[j], ws[j], a)
        rolling_sum(tr, ws[j], ws[j], b)
        for i in range(n):
            out[i] += ks[j] * (a[i] / b[i])
    tot = k1 + k2 + k3
    for i in range(n):
        out[i] = 100.0 * out[i] / tot


@register_warmup
def _warm():
    h = np.array([2.0, 3.0, 4.0, 3.5, 5.0, 4.0, 6.0, 5.5])
    l = h - 1.0
    c = h - 0.5
    o = np.empty_like(c)
    o3 = (np.empty_like(c), np.empty_like(c), np.empty_like(c))   # as ops passes outputs
    stoch(h, l, c, 2, 2, o3[:2])
    williams_r(h, l, c, 2, o)
    cci(h, l, c, 2, 0.015, o)
    adx(h, l, c, 2, o3)
    aroon(h, l, 2, o3[:2])
    psar(h, l, c, 0.02, 0.2, o3)
    ultimate_oscillator(h, l, c, 1, 2, 3, 4.0, 2.0, 1.0, o)

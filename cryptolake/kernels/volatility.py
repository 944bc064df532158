"""Volatility and band kernels: bbands, atr, keltner, donchian. Float64 arrays in,
preallocated outputs written. Imports only numpy, numba and our own kernels."""
from __future__ import annotations

import numpy as np

from ._jit import jit, register_warmup
from ._ewm import ema4, span_alpha
from .ma import ewm_mean
from ._sums import all_finite, np_sum
from .oscillators import _adx_init, _adx_rows, _adx_step, _dm, adx
from .rolling import (
    hilo_block,
    hilo_scratch,
    rolling_max,
    _mean_std_bands,
    mean_std_bands_rows,
    rolling_min,
)

NAN = np.nan


@jit
def bbands(close, window, k, out):
    """`ta.volatility.BollingerBands(close, window, window_dev=k)`: rows bb_mid
    (bollinger_mavg), bb_upper, bb_lower, one pass (`rolling_mean_std`'s arithmetic, the bands
    written block by block with a vectorised square root). The population standard deviation
    is near-exact (ta's pandas rolling std drifts by up to ~1e-5 relative on long series, so
    the exact two-pass value is the reference)."""
    _mean_std_bands(close, window, window, 0, k, True, out[0], out[1], out[2])


@jit
def bbands_rows(close, window, k, out, lo, hi):
    """Rows lo .. hi-1 of `bbands` (lo a multiple of `rolling.std_block(window)`; the blocks
    are independent, so row ranges on different threads give the whole call's bits)."""
    mean_std_bands_rows(close, window, window, 0, k, True, out[0], out[1], out[2], lo, hi)


@jit(inline="always")
def _tr(high, low, close, i):
    # max of h-l, |h-pc|, |l-pc|, NaNs skipped (row 0 is h - l)
    h = high[i]
    l = low[i]
    t = h - l
    if i > 0:
        pc = close[i - 1]
        a = abs(h - pc)
        b = abs(l - pc)
        if t != t or (a == a and a > t):
            t = a
        if t != t or (b == b and b > t):
            t = b
    return t


@jit(inline="always")
def _trv(h, l, pc):
    # max(h - l, |h - pc|, |l - pc|) without branches; NaN whenever h, l or pc is
    t = h - l
    a = abs(h - pc)
    b = abs(l - pc)
    m = a if a > b else b
    r = m if m > t else t
    return r + (t - t) + (pc - pc)


@jit(inline="always")
def tr_max(high, low, close, i):
    """The true range of row i >= 1 as max(h-l, |h-pc|, |l-pc|), without branches (a
    compare-and-branch per row mispredicts about half the time inside a recurrence). NaN
    whenever h, l or pc is (then the caller takes `_tr`, ta's NaN-skipping rule)."""
    return _trv(high[i], low[i], close[i - 1])


@jit
def true_range(high, low, close, out):
    """ta's `IndicatorMixin._true_range(high, low, close.shift(1))`: max of h-l, |h-pc|,
    |l-pc|, NaNs skipped (row 0 is h - l)."""
    for i in range(close.shape[0]):
        out[i] = _tr(high, low, close, i)


@jit(inline="always")
def _atr_seed(high, low, close, window, out):
    for i in range(window):
        out[i] = _tr(high, low, close, i)
    prev = np_sum(out, 0, window) / window
    for i in range(window - 1):
        out[i] = 0.0
    out[window - 1] = prev
    return prev


@jit
def _atr_init(high, low, close, window, out, st):
    """ATR's rows before `window` (0, then the seed at row window-1) and the state there
    (st[0] = the last value); returns the first row `_atr_rows` computes (n when the series
    is shorter than a window: then every row is 0)."""
    n = close.shape[0]
    if n < window:
        for i in range(n):
            out[i] = 0.0
        st[0] = 0.0
        return n
    st[0] = _atr_seed(high, low, close, window, out)
    return window


@jit
def _atr_rows(high, low, close, window, out, lo, hi, st):
    """Rows lo .. hi-1 of `atr` (lo >= window, on the four-row grid from `window`), from the
    last value st[0], left at hi in st[0]: Wilder's step as
    prev * (1 - 1/window) + tr / window four rows at a time (`ema4`), the true range branch-free
    (`_trv`) and, in a block of four with a NaN/inf in it, with ta's NaN-skipping rule (`_tr`,
    the same bits on finite rows). A last partial block takes the same formulas (a prefix of
    the input gives a prefix of the output)."""
    prev = st[0]
    a = 1.0 / window
    f = (window - 1.0) / window
    f2 = f * f
    f3 = f2 * f
    f4 = f3 * f
    q4 = (hi - lo) // 4
    hv = high[lo:hi]                     # slices indexed from 0: no wraparound checks
    lv = low[lo:hi]
    pv = close[lo - 1:hi - 1]
    ov = out[lo:hi]
    for q in range(q4):
        t = 4 * q
        x1 = _trv(hv[t], lv[t], pv[t])
        x2 = _trv(hv[t + 1], lv[t + 1], pv[t + 1])
        x3 = _trv(hv[t + 2], lv[t + 2], pv[t + 2])
        x4 = _trv(hv[t + 3], lv[t + 3], pv[t + 3])
        if (x1 - x1) + (x2 - x2) + (x3 - x3) + (x4 - x4) != 0.0:
            i = lo + t
            x1 = _tr(high, low, close, i)
            x2 = _tr(high, low, close, i + 1)
            x3 = _tr(high, low, close, i + 2)
            x4 = _tr(high, low, close, i + 3)
        y1, y2, y3, y4 = ema4(prev, x1, x2, x3, x4, a, f, f2, f3, f4)
        ov[t] = y1
        ov[t + 1] = y2
        ov[t + 2] = y3
        ov[t + 3] = y4
        prev = y4
    i = lo + 4 * q4
    r = hi - i
    if r > 0:
        x1 = _tr(high, low, close, i)
        x2 = _tr(high, low, close, i + 1) if r > 1 else 0.0
        x3 = _tr(high, low, close, i + 2) if r > 2 else 0.0
        y1, y2, y3, y4 = ema4(prev, x1, x2, x3, 0.0, a, f, f2, f3, f4)
        out[i] = y1
        if r > 1:
            out[i + 1] = y2
        if r > 2:
            out[i + 2] = y3
        prev = y1 if r == 1 else (y2 if r == 2 else y3)
    st[0] = prev


@jit
def atr(high, low, close, window, out):
    """`ta.volatility.AverageTrueRange(high, low, close, window).average_true_range()`:
    seed = mean of the first `window` true ranges at row window-1, then ta's
    (prev * (window-1) + tr) / window, here as prev * (1 - 1/window) + tr / window four rows
    at a time (`ema4`: one multiply-add on the dependency chain per four rows, a few ulp of
    ta's value), the true range computed in the same pass without branches (ta's
    NaN-skipping rule in a block of four that holds a NaN/inf: a NaN true range makes every
    later value NaN, as in ta). As in ta, rows before window-1 are 0, not NaN.
    (`_atr_init` + `_atr_rows`: the resumable form for `ops._split_recur`.)"""
    st = np.empty(1)
    lo = _atr_init(high, low, close, window, out, st)
    _atr_rows(high, low, close, window, out, lo, close.shape[0], st)


@jit(inline="always")
def _hlc_ok(high, low, close, i):
    h = high[i]
    l = low[i]
    c = close[i]
    return (h - h == 0.0) & (l - l == 0.0) & (c - c == 0.0)


@jit
def _keltner_block(high, low, close, w, half, mid, up, dn, b0, b1):
    # Rows b0 .. b1-1 of the original Keltner channel from running sums of high, low and close
    # (mean tp = (Sh + Sl + Sc) / 3n, band = half * (Sh - Sl) / n), summed afresh over the
    # window ending at b0 - 1 (fixed rows: no drift beyond a block, no look-ahead). A row is
    # missing unless high, low and close are all finite (its tp would be NaN in ta).
    sh = 0.0
    sl = 0.0
    sc = 0.0
    nobs = 0
    for j in range(max(b0 - w, 0), b0):
        if _hlc_ok(high, low, close, j):
            sh += high[j]
            sl += low[j]
            sc += close[j]
            nobs += 1
    inv3w = 1.0 / (3.0 * w)
    hw = half / w
    m = b1 - b0
    if b0 >= w and nobs == w:
        ha = high[b0:b1]                      # slices indexed from 0: no wraparound checks
        la = low[b0:b1]
        ca = close[b0:b1]
        hb = high[b0 - w:b1 - w]
        lb = low[b0 - w:b1 - w]
        cb = close[b0 - w:b1 - w]
        mo = mid[b0:b1]
        uo = up[b0:b1]
        do = dn[b0:b1]
        t0, t1, t2 = sh, sl, sc
        for t in range(m):
            sh += ha[t] - hb[t]
            sl += la[t] - lb[t]
            sc += ca[t] - cb[t]
            mu = (sh + sl + sc) * inv3w
            band = (sh - sl) * hw
            mo[t] = mu
            uo[t] = mu + band
            do[t] = mu - band
        if sh - sh == 0.0 and sl - sl == 0.0 and sc - sc == 0.0:   # every row finite
            return
        sh, sl, sc = t0, t1, t2
    for i in range(b0, b1):                   # the same arithmetic, missing rows as 0
        ok = _hlc_ok(high, low, close, i)
        uok = i >= w and _hlc_ok(high, low, close, i - w)
        sh += (high[i] if ok else 0.0) - (high[i - w] if uok else 0.0)
        sl += (low[i] if ok else 0.0) - (low[i - w] if uok else 0.0)
        sc += (close[i] if ok else 0.0) - (close[i - w] if uok else 0.0)
        nobs += (1 if ok else 0) - (1 if uok else 0)
        if nobs == 0:
            mid[i] = NAN
            up[i] = NAN
            dn[i] = NAN
            continue
        if nobs == w:
            mu = (sh + sl + sc) * inv3w
            band = (sh - sl) * hw
        else:
            mu = (sh + sl + sc) / (3.0 * nobs)
            band = half * (sh - sl) / nobs
        mid[i] = mu if nobs == w else NAN
        up[i] = mu + band
        dn[i] = mu - band


@jit
def keltner(high, low, close, window, atr_window, k, original, out):
    """`ta.volatility.KeltnerChannel(high, low, close, window, window_atr=atr_window,
    original_version=original, multiplier=k)`: rows kc_mid, kc_upper, kc_lower.

    original=True (ta's default): mid = SMA of typical price (min_periods=window); bands are
    rolling means (min_periods=0, so they start at row 0 as in ta) of tp +/- (k/2)(h - l),
    which for k=2 is ta's (4h - 2l + c)/3 and (-2h + 4l + c)/3. One pass: running sums of
    high, low and close restarted every max(1024, window) rows (a few ulp of ta's values).
    original=False: mid = EMA(close, span=window) and bands mid +/- k * ATR(atr_window) (ta's
    ATR, 0 during its warm-up).
    """
    n = close.shape[0]
    if original:
        B = max(1024, window)
        for b0 in range(0, n, B):
            _keltner_block(high, low, close, window, k / 2.0, out[0], out[1], out[2], b0,
                           min(b0 + B, n))
        return
    ewm_mean(close, span_alpha(window), window, out[0])
    tmp = out[1]
    atr(high, low, close, atr_window, tmp)
    mid = out[0]
    lo = out[2]
    for i in range(n):
        m = mid[i]
        a = k * tmp[i]
        tmp[i] = m + a
        lo[i] = m - a


@jit
def donchian(high, low, window, offset, out):
    """`ta.volatility.DonchianChannel(high, low, close, window, offset)`: rows dc_mid
    (((upper - lower) / 2) + lower), dc_upper (rolling max high), dc_lower (rolling min low),
    shifted down by `offset` rows (offset >= 0)."""
    n = high.shape[0]
    if not donchian_rows(high, low, window, out, 0, n):
        # NaN/inf somewhere: NaN-aware rolling max/min
        rolling_max(high, window, window, out[1])
        rolling_min(low, window, window, out[2])
        for i in range(n):
            out[0][i] = ((out[1][i] - out[2][i]) / 2.0) + out[2][i]
    shift_down(out, offset)


@jit
def donchian_rows(high, low, window, out, lo, hi):
    """Rows lo .. hi-1 of `donchian` before its shift, for finite input (lo a multiple of
    `window`): one pass of `hilo_block`s, the block before lo read again for its suffix
    extremes. Returns False (values meaningless) when a block it reads holds a NaN/inf;
    the extremes are exact, so row ranges on different threads give the whole call's bits."""
    sh, sl, hh, ll = hilo_scratch(window)
    if lo > 0 and not hilo_block(high, low, lo - window, window, sh, sl, hh, ll):
        return False
    for b0 in range(lo, hi, window):     # finite input: one pass (`hilo_block`)
        if not hilo_block(high, low, b0, window, sh, sl, hh, ll):
            return False
        m = min(window, hi - b0)
        om = out[0][b0:b0 + m]           # slices: non-negative indices, the loop vectorises
        ou = out[1][b0:b0 + m]
        ol = out[2][b0:b0 + m]
        for t in range(m):
            h = hh[t]
            l = ll[t]
            om[t] = ((h - l) / 2.0) + l
            ou[t] = h
            ol[t] = l
    return True


@jit
def shift_down(out, offset):
    """Shift each output down by `offset` rows (NaN in front), in place."""
    if offset > 0:
        n = out[0].shape[0]
        for r in range(len(out)):
            for i in range(n - 1, -1, -1):
                out[r][i] = out[r][i - offset] if i >= offset else NAN


@register_warmup
def _warm():
    h = np.array([2.0, 3.0, 4.0, 3.5, 5.0, 4.0, 6.0, 5.5])
    l = h - 1.0
    c = h - 0.5
    o = np.empty_like(c)
    o3 = (np.empty_like(c), np.empty_like(c), np.empty_like(c))   # as ops passes outputs
    bbands(c, 3, 2.0, o3)
    atr(h, l, c, 3, o)
    keltner(h, l, c, 3, 2, 2.0, True, o3)
    keltner(h, l, c, 3, 2, 2.0, False, o3)
    donchian(h, l, 3, 0, o3)
    atr_adx(h, l, c, 3, 2, o, o3[0], o3[1], o3[2])


# ---------------------------------------------------------------- atr + adx in one pass
@jit
def _atr_adx_rows(high, low, close, wa, wx, out, ax, ap, an, lo, hi, sa, sx):
    """Rows lo .. hi-1 of `atr` (window wa; lo on its four-row grid) and `adx` (window wx;
    lo >= 2*wx) together, from their states sa and sx, left at hi there: each row's true
    range is computed once (`_trv`; for finite rows with high >= low it is the same bits as
    ADX's max(h, pc) - min(l, pc): the same one subtraction wins), read once for both."""
    prev = sa[0]
    a = 1.0 / wa
    f = (wa - 1.0) / wa
    f2 = f * f
    f3 = f2 * f
    f4 = f3 * f
    fw = float(wx)
    keep = 1.0 - 1.0 / fw
    kw = (wx - 1) / fw
    inv = 1.0 / fw
    trs = sx[0]
    dip = sx[1]
    din = sx[2]
    adxv = sx[3]
    q4 = (hi - lo) // 4
    hs = high[lo:hi]                     # slices indexed from 0: no wraparound checks
    ls = low[lo:hi]
    hp = high[lo - 1:hi - 1]
    lp = low[lo - 1:hi - 1]
    cs = close[lo - 1:hi - 1]
    ov = out[lo:hi]
    xs = ax[lo:hi]
    ps = ap[lo:hi]
    ns = an[lo:hi]
    for q in range(q4):
        t = 4 * q
        x1 = _trv(hs[t], ls[t], cs[t])
        x2 = _trv(hs[t + 1], ls[t + 1], cs[t + 1])
        x3 = _trv(hs[t + 2], ls[t + 2], cs[t + 2])
        x4 = _trv(hs[t + 3], ls[t + 3], cs[t + 3])
        y1, y2, y3, y4 = ema4(prev, x1, x2, x3, x4, a, f, f2, f3, f4)
        ov[t] = y1
        ov[t + 1] = y2
        ov[t + 2] = y3
        ov[t + 3] = y4
        prev = y4
        for u in range(4):
            tr = x1 if u == 0 else (x2 if u == 1 else (x3 if u == 2 else x4))
            v = t + u
            _, pos, neg = _dm(hs[v], hp[v], ls[v], lp[v], cs[v])   # ADX's own +DM/-DM rule
            trs, dip, din, adxv, dpos, dneg = _adx_step(tr, pos, neg, trs, dip, din, adxv,
                                                        keep, kw, inv)
            ps[v] = dpos
            ns[v] = dneg
            xs[v] = adxv
    sa[0] = prev
    sx[0] = trs
    sx[1] = dip
    sx[2] = din
    sx[3] = adxv
    i = lo + 4 * q4
    if i < hi:                           # the last partial group: each kernel's own rows
        _atr_rows(high, low, close, wa, out, i, hi, sa)
        _adx_rows(high, low, close, wx, ax, ap, an, i, hi, sx)


@jit
def atr_adx(high, low, close, wa, wx, out, ax, ap, an):
    """`atr(high, low, close, wa, out)` and `adx(high, low, close, wx, (ax, ap, an))` in one
    pass over the inputs once both are past their seeds, bit for bit the separate calls.
    Inputs with a NaN/inf or a high below its low (where the two true ranges differ) take
    the separate calls."""
    n = close.shape[0]
    ok = all_finite(high) and all_finite(low) and all_finite(close)
    if ok:
        for i in range(n):
            if high[i] < low[i]:
                ok = False
                break
    if not ok:
        atr(high, low, close, wa, out)
        adx(high, low, close, wx, (ax, ap, an))
        return
    sa = np.empty(1)
    sx = np.empty(4)
    la = _atr_init(high, low, close, wa, out, sa)
    lx = _adx_init(high, low, close, wx, ax, ap, an, sx)
    r0 = min(n, la + (max(lx - la, 0) + 3) // 4 * 4)
    _atr_rows(high, low, close, wa, out, la, r0, sa)
    _adx_rows(high, low, close, wx, ax, ap, an, lx, r0, sx)
    if r0 < n:
        _atr_adx_rows(high, low, close, wa, wx, out, ax, ap, an, r0, n, sa, sx)

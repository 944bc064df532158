"""Range and oscillator kernels on high/low/close: stoch, williams_r, cci, adx, aroon, psar,
ultimate oscillator.

Each reads float64 arrays and writes into preallocated outputs (`out` 1-D, or a tuple of 1-D
arrays, one per output column). Each docstring names the `ta` call it reproduces (with
`fillna=False`). Imports only numpy, numba and our own kernels.
"""
from __future__ import annotations

import numpy as np

from ._jit import jit, register_warmup
from ._sums import np_sum
from .rolling import (
    hilo_block,
    hilo_scratch,
    rolling_max,
    rolling_mean,
    rolling_mean_exact,
    rolling_min,
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
    high/low: one pass (`range_position_rows`); otherwise NaN-aware rolling max/min first,
    with `scratch` (a length-n array) holding the highest high."""
    n = close.shape[0]
    if not range_position_rows(high, low, close, window, kind, out, 0, n):
        rolling_max(high, window, window, scratch)
        rolling_min(low, window, window, out)
        for i in range(n):
            out[i] = _position(kind, close[i], scratch[i], out[i])


@jit
def range_position_rows(high, low, close, window, kind, out, lo, hi):
    """Rows lo .. hi-1 of `_range_position` for finite high/low (lo a multiple of `window`):
    `hilo_block`s, the block before lo read again for its suffix extremes. Returns False
    (values meaningless) when a block it reads holds a NaN/inf. The extremes are exact, so
    row ranges on different threads give the whole call's bits."""
    sh, sl, hh, ll = hilo_scratch(window)
    if lo > 0 and not hilo_block(high, low, lo - window, window, sh, sl, hh, ll):
        return False
    for b0 in range(lo, hi, window):
        if not hilo_block(high, low, b0, window, sh, sl, hh, ll):
            return False
        m = min(window, hi - b0)
        cs = close[b0:b0 + m]            # slices: non-negative indices, the loop vectorises
        os_ = out[b0:b0 + m]
        if kind == _K:
            for t in range(m):
                os_[t] = _position(_K, cs[t], hh[t], ll[t])
        else:
            for t in range(m):
                os_[t] = _position(_R, cs[t], hh[t], ll[t])
    return True


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


_CCI_FLAT = 1e-5     # a window whose mean deviation is below this of |mean| is "near-flat"
# pandas' rolling mean keeps the rounding of large values that have left the window: where it
# is further than this (relative to the mean deviation) from the window's own mean, the row is
# redone around that own mean, as ta does (found by hypothesis: prices falling from ~1 to ~1e-6)
_CCI_CENTER = 1e-11


@jit(inline="always")
def _cci_exact(tp, i, w, m, c):
    """Row i of CCI as ta computes it: the mean deviation around np.mean of the window (bit
    for bit: on a near-flat window it decides whether the deviation is 0 or an ulp), over
    the deviation of tp from pandas' rolling mean m."""
    lo = i - w + 1
    mu = np_sum(tp, lo, w) / w
    dev = 0.0
    for j in range(lo, i + 1):
        dev += abs(tp[j] - mu)
    return (tp[i] - m) / (c * (dev / w))


@jit
def cci(high, low, close, window, c, out):
    """`ta.trend.CCIIndicator(high, low, close, window, constant=c).cci()`:
    (tp - rolling mean tp) / (c * mean absolute deviation), tp = (h + l + c) / 3, the rolling
    mean replaying pandas' arithmetic bit for bit. The mean deviation (O(window) a row, as in
    ta and TA-Lib) is taken around that rolling mean, eight rows at once in vector lanes
    (each row's deviations summed in order, so a row gets the same bits alone or in a
    group). ta takes it around np.mean of the window, which differs by an ulp or two: that
    changes a row by at most ~1e-15 * |mean| / deviation relative, so where the deviation
    is below 1e-5 of |mean| (near-flat windows, where it matters) the row is recomputed
    exactly as ta does (`_cci_exact`)."""
    n = close.shape[0]
    tp = np.empty(n)
    typical_price_rows(high, low, close, tp, 0, n)
    rolling_mean_exact(tp, window, window, out)
    cci_rows(tp, window, c, out, 0, n)


@jit
def typical_price_rows(high, low, close, tp, lo, hi):
    """Rows lo .. hi-1 of (h + l + c) / 3 into tp."""
    for i in range(lo, hi):
        tp[i] = (high[i] + low[i] + close[i]) / 3.0


_CCI_R = 256        # rows per block of `cci_rows` (their deviation sums stay in L1)


@jit
def cci_rows(tp, window, c, out, lo, hi):
    """Rows lo .. hi-1 of `cci`, where `out` holds pandas' rolling mean of tp on entry. Each
    row's mean deviation is its own in-order sum (the same bits whatever rows it is computed
    with), so row ranges may start anywhere and run on different threads. Blocks of 256
    rows: the sums grow one window offset at a time across the block's rows (a vectorised
    pass per offset), then a vectorised pass divides; near-flat windows, and windows whose
    rolling mean strayed from their own sum's mean (`_CCI_CENTER`), are redone exactly
    (`_cci_exact`) and rows whose mean is NaN keep it."""
    w = window
    dev = np.empty(_CCI_R)
    sm = np.empty(_CCI_R)
    flat = np.empty(_CCI_R, np.bool_)
    for r0 in range(max(lo, w - 1), hi, _CCI_R):
        r1 = min(r0 + _CCI_R, hi)
        m = r1 - r0
        ms = out[r0:r1]
        xt = tp[r0:r1]
        d = dev[:m]
        for r in range(m):
            d[r] = 0.0
            sm[r] = 0.0
        for j in range(w):
            xs = tp[r0 - w + 1 + j:r1 - w + 1 + j]
            for r in range(m):
                v = xs[r]
                d[r] += abs(v - ms[r])
                sm[r] += v
        nflat = 0
        for r in range(m):
            mu = ms[r]
            mad = d[r] / w
            ok = (mad >= _CCI_FLAT * abs(mu)) & (abs(mu - sm[r] / w) <= _CCI_CENTER * mad)
            isf = (mu == mu) & (not ok)
            flat[r] = isf
            nflat += 1 if isf else 0
            ms[r] = (xt[r] - mu) / (c * mad) if ok else mu
        if nflat > 0:
            for r in range(m):
                if flat[r]:
                    ms[r] = _cci_exact(tp, r0 + r, w, ms[r], c)


@jit(inline="always")
def _dm(hi, hi0, lo, lo0, pc):
    """True range and ta's +DM / -DM of a row from its high/low, the previous high/low and
    the previous close (`&`, not `and`: selects, not branches that mispredict)."""
    tr = max(hi, pc) - min(lo, pc)
    up = hi - hi0
    dn = lo0 - lo
    return tr, (up if (up > dn) & (up > 0) else 0.0), (dn if (dn > up) & (dn > 0) else 0.0)


@jit
def _adx_init(high, low, close, window, ax, ap, an, st):
    """ADX's rows before 2*window (ta's seeds: zeros, the first DI values, the ADX seed at
    row 2*window-1) and the state there, st = (trs, dip, din, adx); returns the first row
    `_adx_rows` computes (n when the series ends first)."""
    n = close.shape[0]
    w = window
    for i in range(min(n, 2 * w - 1)):
        ax[i] = 0.0
    for i in range(min(n, w + 1)):
        ap[i] = 0.0
        an[i] = 0.0
    if n <= w:
        return n
    buf = np.empty(w + 1)                # the seeds: pandas .sum() of rows 1..w (pairwise)
    for i in range(1, w + 1):
        buf[i] = _dm(high[i], high[i - 1], low[i], low[i - 1], close[i - 1])[0]
    trs = np_sum(buf, 1, w)
    for i in range(1, w + 1):
        buf[i] = _dm(high[i], high[i - 1], low[i], low[i - 1], close[i - 1])[1]
    dip = np_sum(buf, 1, w)
    for i in range(1, w + 1):
        buf[i] = _dm(high[i], high[i - 1], low[i], low[i - 1], close[i - 1])[2]
    din = np_sum(buf, 1, w)
    fw = float(w)
    keep = 1.0 - 1.0 / fw
    dxb = np.empty(w)                    # the first window of DX values (ADX's seed)
    adxv = 0.0
    for p in range(w, min(2 * w, n)):
        if p > w:
            tr, pos, neg = _dm(high[p], high[p - 1], low[p], low[p - 1], close[p - 1])
            trs = trs * keep + tr
            dip = dip * keep + pos
            din = din * keep + neg
        r = 100.0 / trs
        dpos = dip * r if trs != 0 else 0.0
        dneg = din * r if trs != 0 else 0.0
        if p > w:
            ap[p] = dpos
            an[p] = dneg
        s = dpos + dneg
        dx = 100.0 * abs((dpos - dneg) / s)
        dxb[p - w] = dx if s != 0 else 0.0
        if p == 2 * w - 1:
            adxv = np_sum(dxb, 0, w) / w
            ax[p] = adxv
    st[0] = trs
    st[1] = dip
    st[2] = din
    st[3] = adxv
    return min(n, 2 * w)


@jit(inline="always")
def _adx_step(tr, pos, neg, trs, dip, din, adxv, keep, kw, inv):
    """One steady row of ADX from its true range and directional moves: the new sums and
    ADX, and the row's adx_pos, adx_neg."""
    trs = trs * keep + tr
    dip = dip * keep + pos
    din = din * keep + neg
    r = 100.0 / trs
    dpos = dip * r if trs != 0 else 0.0
    dneg = din * r if trs != 0 else 0.0
    s = dpos + dneg
    dx = 100.0 * abs((dpos - dneg) / s)
    adxv = adxv * kw + (dx if s != 0 else 0.0) * inv
    return trs, dip, din, adxv, dpos, dneg


@jit
def _adx_rows(high, low, close, window, ax, ap, an, lo, hi, st):
    """Rows lo .. hi-1 (lo >= 2*window) of `adx` from the state st (see `_adx_init`), left
    at hi in st."""
    if lo >= hi:
        return
    fw = float(window)
    keep = 1.0 - 1.0 / fw
    kw = (window - 1) / fw
    inv = 1.0 / fw
    trs = st[0]
    dip = st[1]
    din = st[2]
    adxv = st[3]
    hs = high[lo:hi]                     # slices (non-negative indices)
    ls = low[lo:hi]
    cs = close[lo - 1:hi - 1]
    hp = high[lo - 1:hi - 1]
    lp = low[lo - 1:hi - 1]
    xs = ax[lo:hi]
    ps = ap[lo:hi]
    ns = an[lo:hi]
    for t in range(hi - lo):
        tr, pos, neg = _dm(hs[t], hp[t], ls[t], lp[t], cs[t])
        trs, dip, din, adxv, dpos, dneg = _adx_step(tr, pos, neg, trs, dip, din, adxv,
                                                    keep, kw, inv)
        ps[t] = dpos
        ns[t] = dneg
        xs[t] = adxv
    st[0] = trs
    st[1] = dip
    st[2] = din
    st[3] = adxv


@jit
def adx(high, low, close, window, out):
    """`ta.trend.ADXIndicator(high, low, close, window)`: rows adx(), adx_pos(), adx_neg(),
    ta's Wilder sums and seeding in one pass, each output written once, no length-n
    temporaries. ta's steps x - x / w + v and (a * (w - 1) + v) / w are taken as
    x * (1 - 1/w) + v and a * ((w - 1)/w) + v / w: two dependent operations a row instead of
    three (the running sums are the latency chain), within a few ulps a step, and the
    smoothing is contractive, so within ~1e-14 relative of ta. As in ta, the warm-up rows
    are 0 (not NaN): adx before row 2*window-1, adx_pos/adx_neg up to row window.
    Expects finite inputs (ta drops NaN rows before seeding). (`_adx_init` + `_adx_rows`:
    the resumable form for `ops._split_recur`.)"""
    st = np.empty(4)
    ax = out[0]
    ap = out[1]
    an = out[2]
    lo = _adx_init(high, low, close, window, ax, ap, an, st)
    _adx_rows(high, low, close, window, ax, ap, an, lo, close.shape[0], st)


@jit
def aroon(high, low, window, out):
    """`ta.trend.AroonIndicator(high, low, window)`: rows aroon_up(), aroon_down() =
    100 * (position of the first max / min in the last window+1 rows) / window; NaN while
    the span holds a NaN/inf (pandas' rolling apply counts them as missing).

    van Herk / Gil-Werman on (value, row) pairs, one block of window+1 rows at a time: the
    span ending at row i is a suffix of the previous block plus a prefix of this one; the
    prefix keeps its first extreme (strict compare), the suffix its first too (>=, scanning
    backwards), and the suffix wins ties (it is earlier). O(n), branch-free, exact."""
    aroon_rows(high, low, window, out, 0, high.shape[0])


@jit
def aroon_rows(high, low, window, out, lo, hi):
    """Rows lo .. hi-1 of `aroon` (lo a multiple of window + 1, hi one too or the series'
    end). What a block takes from the rows before it (the previous block's suffix extremes,
    the last missing rows within one span) is recomputed from those rows, so row ranges on
    different threads give the whole call's bits."""
    s = window + 1
    up = out[0]
    dn = out[1]
    shv = np.full(s + 1, -np.inf)        # previous block's suffix max / min and their rows
    shi = np.zeros(s + 1, np.int64)
    slv = np.full(s + 1, np.inf)
    sli = np.zeros(s + 1, np.int64)
    badh = -1                            # last rows with a missing high / low (rows < 0
    badl = -1                            # count as missing; earlier ones no longer matter)
    tab = np.empty(s)                    # ta's value for each position, looked up
    for k in range(s):
        tab[k] = float(k) / window * 100.0
    if lo > 0:
        a0 = lo - s
        _aroon_suffix(high[a0:lo], low[a0:lo], a0, shv, shi, slv, sli)
        for i in range(a0, lo):
            badh = badh if high[i] - high[i] == 0.0 else i
            badl = badl if low[i] - low[i] == 0.0 else i
    for b0 in range(lo, hi, s):
        b1 = min(b0 + s, hi)
        m = b1 - b0
        hs = high[b0:b1]
        ls = low[b0:b1]
        us = up[b0:b1]
        ds = dn[b0:b1]
        mh = -np.inf
        ml = np.inf
        mhi = b0
        mli = b0
        for t in range(m):
            h = hs[t]
            l = ls[t]
            i = b0 + t
            badh = badh if h - h == 0.0 else i
            badl = badl if l - l == 0.0 else i
            gt = h > mh
            mhi = i if gt else mhi
            mh = h if gt else mh
            lt = l < ml
            mli = i if lt else mli
            ml = l if lt else ml
            a = shv[t + 1]
            ih = shi[t + 1] if a >= mh else mhi
            b = slv[t + 1]
            il = sli[t + 1] if b <= ml else mli
            vh = i - badh >= s
            vl = i - badl >= s
            kh = ih - i + window if vh else 0    # (garbage rows stay in the table)
            kl = il - i + window if vl else 0
            us[t] = tab[kh] if vh else NAN
            ds[t] = tab[kl] if vl else NAN
        _aroon_suffix(hs, ls, b0, shv, shi, slv, sli)   # for the next block


@jit(inline="always")
def _aroon_suffix(hs, ls, b0, shv, shi, slv, sli):
    """The suffix max of hs / min of ls (first row on ties) and their rows (b0 + t), into
    shv/shi and slv/sli[t]."""
    m = hs.shape[0]
    mh = -np.inf
    ml = np.inf
    mhi = b0 + m - 1
    mli = b0 + m - 1
    for t in range(m - 1, -1, -1):
        h = hs[t]
        l = ls[t]
        ge = h >= mh
        mhi = b0 + t if ge else mhi
        mh = h if ge else mh
        le = l <= ml
        mli = b0 + t if le else mli
        ml = l if le else ml
        shv[t] = mh
        shi[t] = mhi
        slv[t] = ml
        sli[t] = mli


@jit
def _psar_init(high, low, close, step, max_step, ps, pu, pd_, st):
    """PSAR's rows 0 and 1 (the close) and the state after them: st = (up_trend, af,
    up_high, down_low, prev). Returns the first row `_psar_rows` computes (2, or n)."""
    n = close.shape[0]
    for i in range(min(n, 2)):
        ps[i] = close[i]
        pu[i] = NAN
        pd_[i] = NAN
    if n < 3:
        return n
    st[0] = 1.0
    st[1] = step
    st[2] = high[0]
    st[3] = low[0]
    st[4] = close[1]
    return 2


@jit
def _psar_rows(high, low, close, step, max_step, ps, pu, pd_, lo, hi, st):
    """Rows lo .. hi-1 (lo >= 2) of `psar` from the state st (see `_psar_init`), left at hi
    in st; the last two highs and lows are read from the rows before lo."""
    if lo >= hi:
        return
    up_trend = st[0] != 0.0
    af = st[1]
    up_high = st[2]
    down_low = st[3]
    prev = st[4]
    h2 = high[lo - 2]
    h1 = high[lo - 1]
    l2 = low[lo - 2]
    l1 = low[lo - 1]
    for i in range(lo, hi):
        max_high = high[i]
        min_low = low[i]
        if up_trend:
            v = prev + (af * (up_high - prev))
            if min_low < v:
                v = up_high
                down_low = min_low
                af = step
                up_trend = False
            else:
                if max_high > up_high:
                    up_high = max_high
                    af = min(af + step, max_step)
                if l2 < v:
                    v = l2
                elif l1 < v:
                    v = l1
        else:
            v = prev - (af * (prev - down_low))
            if max_high > v:
                v = down_low
                up_high = max_high
                af = step
                up_trend = True
            else:
                if min_low < down_low:
                    down_low = min_low
                    af = min(af + step, max_step)
                if h2 > v:
                    v = h2
                elif h1 > v:
                    v = h1
        ps[i] = v
        pu[i] = v if up_trend else NAN
        pd_[i] = NAN if up_trend else v
        prev = v
        h2 = h1
        h1 = max_high
        l2 = l1
        l1 = min_low
    st[0] = 1.0 if up_trend else 0.0
    st[1] = af
    st[2] = up_high
    st[3] = down_low
    st[4] = prev


@jit
def psar(high, low, close, step, max_step, out):
    """`ta.trend.PSARIndicator(high, low, close, step, max_step)`: rows psar(), psar_up(),
    psar_down(), the same loop as ta (rows 0 and 1 of psar are the close). One pass, the
    state (previous SAR, the last two highs/lows) in registers, each output written once.
    (`_psar_init` + `_psar_rows`: the resumable form for `ops._split_recur`.)"""
    st = np.empty(5)
    ps = out[0]
    pu = out[1]
    pd_ = out[2]
    lo = _psar_init(high, low, close, step, max_step, ps, pu, pd_, st)
    _psar_rows(high, low, close, step, max_step, ps, pu, pd_, lo, close.shape[0], st)


_UO_B = 256                  # rows per block (its scratch stays in L1)
UO_BLOCK = _UO_B             # (row ranges of `ultimate_oscillator_rows` start at multiples)
_SHRINK = 0.0009765625       # 2^-10: a tr sum this far below its peak is re-summed


@jit(inline="always")
def _uo_inputs(high, low, close, lo, b1, z, bp, tr, okb, okt):
    """Rows lo..b1-1 of ta's buying pressure and true range into bp/tr[z + row - lo],
    missing values as 0 with flags okb/okt; returns True when none is missing.
    bp = close - min(low, prev close) (NaN when either is); tr = the NaN-skipping max of
    h - l, |h - pc|, |l - pc|; NaN/inf count as missing (as in pandas' rolling sum)."""
    clean = True
    s = lo
    if lo == 0 and b1 > 0:                 # row 0: no previous close
        t = high[0] - low[0]
        ok = t - t == 0.0
        tr[z] = t if ok else 0.0
        okt[z] = ok
        bp[z] = 0.0
        okb[z] = False
        clean = False
        s = 1
    hs = high[s:b1]
    ls = low[s:b1]
    cs = close[s:b1]
    ps = close[s - 1:b1 - 1]
    o = z + s - lo
    bq = bp[o:o + b1 - s]
    tq = tr[o:o + b1 - s]
    kb = okb[o:o + b1 - s]
    kt = okt[o:o + b1 - s]
    for j in range(b1 - s):
        h = hs[j]
        l = ls[j]
        pc = ps[j]
        t = h - l
        u = abs(h - pc)
        t = u if (u > t) | (t != t) else t
        u = abs(l - pc)
        t = u if (u > t) | (t != t) else t
        b = cs[j] - (l if l < pc else pc)
        gb = (b - b == 0.0) & (l == l) & (pc == pc)
        gt = t - t == 0.0
        bq[j] = b if gb else 0.0
        tq[j] = t if gt else 0.0
        kb[j] = gb
        kt[j] = gt
        clean &= gb & gt
    return clean


@jit(inline="always")
def _sum2(bp, tr, a, b):
    """In-order sums of bp[a:b] and tr[a:b]."""
    x = 0.0
    y = 0.0
    for j in range(a, b):
        x += bp[j]
        y += tr[j]
    return x, y


@jit
def _uo_sums(bp, tr, p, m, ws, sums, careful):
    """Running window sums of bp and tr for rows p..p+m-1 of the block buffers (p rows of
    history in front) into sums[2j] (bp) and sums[2j+1] (tr), t = row - p. They start exact
    (re-summed in order) and then add/drop one row each, so each sum's rounding error is at
    most ~2m * 2^-53 times (its start + the tr added since). A tr sum below 2^-10 of that
    (a large range left the window; an all-zero window must give exactly 0) makes the fast
    loop return True at once (the caller reruns it `careful`), and the careful one re-sum
    all three windows in order and restart the count. Up to that row both do the same
    arithmetic, so no value depends on a later row."""
    w1, w2, w3 = ws
    a1, c1 = _sum2(bp, tr, p - w1, p)
    a2, c2 = _sum2(bp, tr, p - w2, p)
    a3, c3 = _sum2(bp, tr, p - w3, p)
    cum = max(c1, c2, c3)                # start + tr added since (bounds the error)
    x0 = bp[p:p + m]
    y0 = tr[p:p + m]
    x1 = bp[p - w1:p - w1 + m]
    y1 = tr[p - w1:p - w1 + m]
    x2 = bp[p - w2:p - w2 + m]
    y2 = tr[p - w2:p - w2 + m]
    x3 = bp[p - w3:p - w3 + m]
    y3 = tr[p - w3:p - w3 + m]
    s0 = sums[0]
    s1 = sums[1]
    s2 = sums[2]
    s3 = sums[3]
    s4 = sums[4]
    s5 = sums[5]
    for t in range(m):
        x = x0[t]
        y = y0[t]
        cum += y
        a1 += x - x1[t]
        c1 += y - y1[t]
        a2 += x - x2[t]
        c2 += y - y2[t]
        a3 += x - x3[t]
        c3 += y - y3[t]
        lim = cum * _SHRINK
        if (c1 < lim) | (c2 < lim) | (c3 < lim):
            if not careful:
                return True
            k = p + t + 1
            a1, c1 = _sum2(bp, tr, k - w1, k)
            a2, c2 = _sum2(bp, tr, k - w2, k)
            a3, c3 = _sum2(bp, tr, k - w3, k)
            cum = max(c1, c2, c3)
        s0[t] = a1
        s1[t] = c1
        s2[t] = a2
        s3[t] = c2
        s4[t] = a3
        s5[t] = c3
    return False


@jit
def ultimate_oscillator(high, low, close, w1, w2, w3, k1, k2, k3, out):
    """`ta.momentum.UltimateOscillator(high, low, close, window1=w1, window2=w2, window3=w3,
    weight1=k1, weight2=k2, weight3=k3).ultimate_oscillator()`.

    Blocks of 256 rows with L1-sized scratch, no length-n temporaries: ta's buying pressure
    and true range for the block and the longest window before it (a vectorised pass), six
    running window sums (`_uo_sums`: exact at each block start and on cancellation, so each
    sum is within ~512 * 2^10 * 2^-53 (~6e-11) of its value in the worst case, ~1e-15
    typically), then the weighted ratios over one common denominator (a vectorised pass, one
    division a row; then ta's three divisions on the rows where that product is zero or
    extreme, e.g. an all-zero window's 0/0).
    Slices, not offsets, index the scratch: numba then knows the indices are non-negative
    and the passes vectorise. A window (min_periods = window, as ta)
    is valid when it holds no missing bp/tr. Blocks start at fixed rows and every decision
    depends on earlier rows only: a prefix of the input gives a prefix of the output."""
    ultimate_oscillator_rows(high, low, close, w1, w2, w3, k1, k2, k3, out, 0, close.shape[0])


@jit
def ultimate_oscillator_rows(high, low, close, w1, w2, w3, k1, k2, k3, out, lo0, hi):
    """Rows lo0 .. hi-1 of `ultimate_oscillator` (lo0 a multiple of its 256-row blocks, hi
    one too or the series' end). A block re-reads the rows of the longest window before it,
    and the last missing rows among those are all it takes from earlier rows (older ones no
    longer matter), so row ranges on different threads give the whole call's bits."""
    p = max(w1, w2, w3)
    B = _UO_B
    bp = np.zeros(B + p)
    tr = np.zeros(B + p)
    okb = np.ones(B + p, np.bool_)
    okt = np.ones(B + p, np.bool_)
    sums = np.empty((6, B))
    ws = (w1, w2, w3)
    sc = 100.0 / (k1 + k2 + k3)
    badb = -(1 << 62)                     # last rows with a missing bp / tr
    badt = -(1 << 62)
    for b0 in range(lo0, hi, B):
        b1 = min(b0 + B, hi)
        m = b1 - b0
        lo = max(b0 - p, 0)
        z = lo - (b0 - p)                 # rows before 0 stay 0 in the buffers
        clean = _uo_inputs(high, low, close, lo, b1, z, bp, tr, okb, okt)
        if b0 == lo0:                     # the missing rows in the window before b0
            for j in range(z, p):
                badb = b0 - p + j if not okb[j] else badb
                badt = b0 - p + j if not okt[j] else badt
        if _uo_sums(bp, tr, p, m, ws, sums, False):
            _uo_sums(bp, tr, p, m, ws, sums, True)
        o = out[b0:b1]
        s0 = sums[0]
        s1 = sums[1]
        s2 = sums[2]
        s3 = sums[3]
        s4 = sums[4]
        s5 = sums[5]
        odd = False
        for t in range(m):
            d1 = s1[t]
            d2 = s3[t]
            d3 = s5[t]
            d = d1 * d2 * d3
            num = k1 * s0[t] * (d2 * d3) + k2 * s2[t] * (d1 * d3) + k3 * s4[t] * (d1 * d2)
            o[t] = num / d * sc
            odd |= not ((d > 1e-280) & (d < 1e280))
        if odd:                           # a zero (or extreme) window: ta's form
            for t in range(m):
                d = s1[t] * s3[t] * s5[t]
                if not ((d > 1e-280) & (d < 1e280)):
                    o[t] = (k1 * (s0[t] / s1[t]) + k2 * (s2[t] / s3[t]) + k3 * (s4[t] / s5[t])) * sc
        if clean and b0 - max(badb, badt) >= p:
            continue
        for t in range(m):                # NaN where a window holds a missing value
            i = b0 + t
            badb = i if not okb[p + t] else badb
            badt = i if not okt[p + t] else badt
            if min(i - badb, i - badt) < p:
                out[i] = NAN


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

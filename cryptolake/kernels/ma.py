"""Moving averages: pandas' exponential mean (four rows at a time, then row by row), the
weighted moving average (the EWM arithmetic lives in `_ewm.py`, sums in `_sums.py`). Rolling sums/means/max/min/std live in
`rolling.py`.

Every kernel reads float64 arrays and writes into a preallocated `out` of the same length.
The rolling sum/mean and the exponential mean replay pandas' own arithmetic (same Kahan
compensation, same constant-run shortcut, same NaN/min_periods rules), so they agree with
pandas to the last bit on ordinary data. Imports only numpy, numba and `_jit`.
"""
from __future__ import annotations

import numpy as np

from ._ewm import alpha_from_alpha, alpha_from_span, ema4, ewm_step  # noqa: F401
from ._jit import jit, register_warmup
from ._sums import np_sum  # noqa: F401

NAN = np.nan


@jit
def _ema_init(x, alpha, minp, out, st):
    """`ewm_mean`'s rows before its first `_ema_rows` row (the NaN prefix, and the first
    finite value) and the state there: st = (weighted, old_wt, nobs capped at minp, mode),
    mode 1 for the four-row steady state (weights (1-alpha) + alpha summing to exactly 1),
    0 for pandas' general row. Returns that first row; in mode 1 it is the base of the
    four-row grid (rows computed from a later state must start on it)."""
    n = x.shape[0]
    st[0] = NAN
    st[1] = 1.0
    st[2] = 0.0
    st[3] = 0.0
    if (1.0 - alpha) + alpha != 1.0:
        return 0
    f0 = 0
    while f0 < n and x[f0] - x[f0] != 0.0:
        f0 += 1
    for i in range(f0):
        out[i] = NAN
    if f0 >= n:
        return n
    out[f0] = x[f0] if minp <= 1 else NAN
    st[0] = x[f0]
    st[2] = min(1, minp)
    st[3] = 1.0
    return f0 + 1


@jit
def _ema_rows(x, alpha, minp, out, lo, hi, st):
    """Rows lo .. hi-1 of `ewm_mean` from the state st (see `_ema_init`), left at hi in st.
    Mode 1: pandas' recurrence four rows at a time (`ema4`) until a block holds a NaN/inf,
    whose finite rows take the same formulas (so a prefix of the input gives a prefix of the
    output); from that row on mode 0, pandas' row bit for bit (`ewm_step`)."""
    weighted = st[0]
    old_wt = st[1]
    nobs = int(st[2])
    i = lo
    if st[3] != 0.0:
        f = 1.0 - alpha
        f2 = f * f
        f3 = f2 * f
        f4 = f3 * f
        y = weighted
        xs = x[lo:hi]                      # slices indexed from 0: no wraparound checks
        os = out[lo:hi]
        done = 0                           # blocks of four rows written
        for q in range(xs.shape[0] // 4):
            t = 4 * q
            x1 = xs[t]
            x2 = xs[t + 1]
            x3 = xs[t + 2]
            x4 = xs[t + 3]
            if (x1 - x1) + (x2 - x2) + (x3 - x3) + (x4 - x4) != 0.0:
                break                      # a NaN/inf in this block: finish it row-wise below
            y1, y2, y3, y4 = ema4(y, x1, x2, x3, x4, alpha, f, f2, f3, f4)
            os[t] = y1
            os[t + 1] = y2
            os[t + 2] = y3
            os[t + 3] = y4
            y = y4
            done = q + 1
        i = lo + 4 * done
        j = i
        while j < hi and j < i + 4 and x[j] - x[j] == 0.0:
            j += 1
        r = j - i                          # last partial block: the same formulas
        if r > 0:
            x2 = x[i + 1] if r > 1 else 0.0
            x3 = x[i + 2] if r > 2 else 0.0
            y1, y2, y3, y4 = ema4(y, x[i], x2, x3, 0.0, alpha, f, f2, f3, f4)
            out[i] = y1
            y = y1
            if r > 1:
                out[i + 1] = y2
                y = y2
            if r > 2:
                out[i + 2] = y3
                y = y3
        for k in range(lo, min(j, lo + minp - 1 - nobs)):
            out[k] = NAN                   # fewer than minp observations so far
        nobs += j - lo
        weighted = y
        i = j
        if j < hi:                         # a NaN/inf: pandas' general row from here on
            st[3] = 0.0
    for k in range(i, hi):
        weighted, old_wt, nobs = ewm_step(weighted, old_wt, nobs, x[k], alpha)
        out[k] = weighted if nobs >= minp else NAN
    st[0] = weighted
    st[1] = old_wt
    st[2] = min(nobs, minp)


@jit
def ewm_mean(x, alpha, minp, out):
    """`pd.Series(x).ewm(alpha=alpha, adjust=False, min_periods=minp).mean()` (ignore_na=False).

    Pass `alpha` through `alpha_from_span`/`alpha_from_alpha`. Up to the first NaN/inf after
    the leading NaNs it runs pandas' recurrence four rows at a time (`ema4`, ~1e-15 relative
    of pandas); from there on it replays pandas row by row, bit for bit.
    Leading NaNs are skipped; an interior NaN keeps the previous value and decays its weight
    as pandas does (including pandas' own rule for alpha == 0.5 after a gap).
    (`_ema_init` + `_ema_rows`: the resumable form for `ops._split_recur`.)
    """
    st = np.empty(4)
    lo = _ema_init(x, alpha, minp, out, st)
    _ema_rows(x, alpha, minp, out, lo, x.shape[0], st)


# ---------------------------------------------------------------- weighted moving average
@jit(inline="always")
def _wma_start(x, w, b0):
    # the weighted and plain sums of the window ending at b0 - 1, afresh (missing rows as 0,
    # counted in nans); finite windows take a loop without selects (same arithmetic)
    wsum = 0.0
    tot = 0.0
    if b0 >= w:
        xr = x[b0 - w:b0]
        for j in range(w):
            v = xr[j]
            wsum += (j + 1) * v
            tot += v
        if wsum - wsum == 0.0 and tot - tot == 0.0:
            return wsum, tot, 0
        wsum = 0.0
        tot = 0.0
    nans = 0
    lo = max(b0 - w, 0)
    for j in range(lo, b0):
        v = x[j]
        ok = v - v == 0.0
        vv = v if ok else 0.0
        wsum += (j - b0 + w + 1) * vv
        tot += vv
        nans += 0 if ok else 1
    return wsum, tot, nans


@jit(inline="always")
def _wma_block(x, w, out, b0, b1):
    fw = float(w)
    norm = 2.0 / (w * (w + 1.0))
    wsum, tot, nans = _wma_start(x, w, b0)
    m = b1 - b0
    # TA-Lib's order of operations (between rows p holds wsum - tot). The weighted sum
    # integrates the plain sum's rounding errors, so its error grows within a block: blocks
    # are kept short (`_wma_block_rows`).
    p = wsum - tot
    if b0 >= w and nans == 0:
        xa = x[b0:b1]                        # slices indexed from 0: no wraparound checks
        xb = x[b0 - w:b1 - w]
        o = out[b0:b1]
        t0 = tot
        p0 = p
        for t in range(m):
            v = xa[t]
            tot += v
            tot -= xb[t]
            p += fw * v
            o[t] = p * norm
            p -= tot
        if p - p == 0.0 and tot - tot == 0.0:   # no NaN/inf (they would persist)
            return
        tot = t0
        p = p0
    for i in range(b0, b1):                  # the same arithmetic, missing rows as 0
        v = x[i]
        ok = v - v == 0.0
        vv = v if ok else 0.0
        u = x[i - w] if i >= w else 0.0
        uok = u - u == 0.0
        tot += vv
        tot -= u if uok else 0.0
        p += fw * vv
        nans += (0 if ok else 1) - (0 if uok else 1)
        out[i] = p * norm if (nans == 0 and i >= w - 1) else NAN
        p -= tot


@jit(inline="always")
def _wma_block_rows(w):
    return max(64, w)


@jit
def wma(x, w, out):
    """`ta.trend.WMAIndicator(x, w).wma()`: weights 1..w normalised by w(w+1)/2, NaN until w
    rows and wherever the window holds a NaN (+/-inf counts as missing, pandas' rule for every
    window op). O(n): running plain and weighted sums, summed afresh every max(64, w) rows
    (fixed rows, so a prefix of the input gives a prefix of the output): the weighted sum
    integrates the plain sum's rounding errors (its error grows through a block), so the blocks
    stay short enough to keep it within TA-Lib's distance from the exact value (1024-row
    blocks were ~40x further off). Finite blocks take a loop
    of two multiply-adds per row without branches."""
    wma_rows(x, w, out, 0, x.shape[0])


@jit
def wma_rows(x, w, out, lo, hi):
    """Rows lo .. hi-1 of `wma` (lo a multiple of `wma_block(w)`, hi one too or the series'
    end): its blocks are independent, so row ranges may run on different threads and give
    the whole call's values bit for bit."""
    B = _wma_block_rows(w)
    b0 = lo
    while b0 < hi:
        if b0 >= w and b0 + 2 * B <= hi:
            _wma_pair(x, w, out, b0, B)  # two blocks at once: their chains overlap
            b0 += 2 * B
        else:
            _wma_block(x, w, out, b0, min(b0 + B, hi))
            b0 += B


@jit(inline="always")
def _wma_pair(x, w, out, b0, B):
    """The two full blocks at b0 and b0 + B (b0 >= w) in one loop: each block's running sums
    are a chain of dependent adds (latency-bound), so two independent chains side by side
    run in about the time of one. Each block's arithmetic is `_wma_block`'s, in the same
    order (the same bits); a NaN/inf in either sends both through `_wma_block`."""
    fw = float(w)
    norm = 2.0 / (w * (w + 1.0))
    ws1, t1, n1 = _wma_start(x, w, b0)
    ws2, t2, n2 = _wma_start(x, w, b0 + B)
    if n1 == 0 and n2 == 0:
        p1 = ws1 - t1
        p2 = ws2 - t2
        xa = x[b0:b0 + B]
        xb = x[b0 - w:b0 + B - w]
        ya = x[b0 + B:b0 + 2 * B]
        yb = x[b0 + B - w:b0 + 2 * B - w]
        o1 = out[b0:b0 + B]
        o2 = out[b0 + B:b0 + 2 * B]
        for t in range(B):
            v = xa[t]
            u = ya[t]
            t1 += v
            t2 += u
            t1 -= xb[t]
            t2 -= yb[t]
            p1 += fw * v
            p2 += fw * u
            o1[t] = p1 * norm
            o2[t] = p2 * norm
            p1 -= t1
            p2 -= t2
        if p1 - p1 == 0.0 and t1 - t1 == 0.0 and p2 - p2 == 0.0 and t2 - t2 == 0.0:
            return
    _wma_block(x, w, out, b0, b0 + B)
    _wma_block(x, w, out, b0 + B, b0 + 2 * B)


@jit
def wma_block(w):
    """Rows per block of `wma` (its row ranges start at multiples of this)."""
    return _wma_block_rows(w)


@register_warmup
def _warm():
    x = np.array([1.0, 2.0, np.nan, 4.0, 3.0, 5.0])
    y = np.array([1.0, 2.0, 3.0, 4.0, 3.0, 5.0])
    o = np.empty_like(x)
    for v in (x, y):
        ewm_mean(v, 0.5, 2, o)
        wma(v, 3, o)
    np_sum(y, 0, 6)

"""KAMA (Kaufman adaptive moving average): `kama` and its resumable form (`_kama_init`,
`_kama_rows`) for `ops._split_recur`. Split out of momentum.py (which re-exports it).
Imports only numpy, numba and our own kernels."""
from __future__ import annotations

import numpy as np

from ._jit import jit
from ._sums import all_finite
from .rolling import rolling_sum

NAN = np.nan


KAMA_DIRECT_MAX = 32    # windows up to this long sum their |changes| directly (pairwise, in
                        # power-of-two runs: within ~log2(w) ulp of exact, no drift)
KAMA_BLOCK = 512


@jit(inline="always")
def _kama_den(close, i, w):
    """The sum of |one-row change| over the w rows ending at row i (0 for row 0), in the
    order of the blocked pass: power-of-two runs summed pairwise (((v0+v1)+(v2+v3))+...),
    the runs of w's binary digits added largest (oldest) first."""
    buf = np.empty(32)
    den = 0.0
    first = True
    q = i - w + 1                        # the oldest row of the window
    L = 32
    while L >= 1:
        if w & L:
            for k in range(L):
                r = q + k
                buf[k] = abs(close[r] - close[r - 1]) if r > 0 else 0.0
            step = 1
            while step < L:
                for k in range(0, L, 2 * step):
                    buf[k] = buf[k] + buf[k + step]
                step *= 2
            den = buf[0] if first else den + buf[0]
            first = False
            q += L
        L //= 2
    return den


@jit(inline="always")
def _kama_sc(close, i, w, fd, ssc):
    """KAMA's smoothing constant at row i >= w - 1 (one row of the blocked pass, same bits):
    efficiency ratio |c - c[i-w]| / (|change| summed over the window, `_kama_den`; NaN when
    any is missing), 0 where that sum is 0."""
    den = _kama_den(close, i, w)
    num = abs(close[i] - close[i - w]) if i >= w else 0.0
    if den - den != 0.0:
        den = NAN                        # a missing change (inf counts as missing, as pandas)
    er = num / den if den != 0 else 0.0
    t = er * fd + ssc
    return t * t


@jit
def _kama_init(close, w, fd, ssc, out, st):
    """KAMA's rows up to its first value (NaN until the first row >= w - 1 with a smoothing
    constant, which is the close itself) and the state after it (st[0] = that value);
    returns the next row, the base of `_kama_rows`' four-row grid (n when there is none)."""
    n = close.shape[0]
    i = min(w - 1, n)
    while i < n and _kama_sc(close, i, w, fd, ssc) != _kama_sc(close, i, w, fd, ssc):
        i += 1
    out[:i] = NAN
    st[0] = NAN
    if i >= n:
        return n
    out[i] = close[i]
    st[0] = close[i]
    return i + 1


@jit(inline="always")
def _kama4(k, s1, s2, s3, s4, c1, c2, c3, c4):
    """Four rows of ta's k <- k + s (c - k), folded so that one multiply-add per four rows
    is left on the dependency chain: relative to r = c1, u <- (1 - s) u + s (c - r) with
    u = k - r, so every rounding is relative to the small deviations from the price (as
    in ta's form: a flat series stays exactly on the price, a near-flat one within a few ulp
    of ta's values), and k = r + u. A NaN smoothing constant makes its row and every later
    one NaN, as in ta."""
    r = c1
    u = k - r
    p1 = 1.0 - s1
    g2 = 1.0 - s2
    g3 = 1.0 - s3
    g4 = 1.0 - s4
    p2 = g2 * p1
    p3 = g3 * p2
    p4 = g4 * p3
    b2 = s2 * (c2 - r)
    b3 = g3 * b2 + s3 * (c3 - r)
    b4 = g4 * b3 + s4 * (c4 - r)
    return r + p1 * u, r + (p2 * u + b2), r + (p3 * u + b3), r + (p4 * u + b4)


@jit
def _kama_rows(close, w, fd, ssc, out, lo, hi, st):
    """Rows lo .. hi-1 of KAMA (windows up to KAMA_DIRECT_MAX; lo on the four-row grid from
    the row after the first value) from the previous value st[0], left at hi in st[0].
    Smoothing constants come a block at a time (the same bits in SIMD lanes and row by row,
    `_kama_sc`); the recurrence runs four rows at a time (`_kama4`), a last partial group
    with the same formulas (a prefix of the input gives a prefix of the output)."""
    n = hi
    B = KAMA_BLOCK
    runs = np.empty((6, B + w))
    sc = np.empty(B + 3)
    k = st[0]
    i = lo
    while i < n:
        b1 = min(i + B, n)
        m = b1 - i
        if i >= w and all_finite(close[i - w:b1]):
            # slices indexed by range variables: no negative-index wraparound, so SIMD lanes
            cur = close[i - w + 1:b1]
            prv = close[i - w:b1 - 1]
            v1 = runs[0]
            for t in range(m + w - 1):
                v1[t] = abs(cur[t] - prv[t])       # |change| of row i - w + 1 + t
            L = 1                                  # runs[lv][t]: 2^lv changes from t, pairwise
            lv = 0
            while 2 * L <= w:
                src = runs[lv]
                dst = runs[lv + 1]
                lo_ = src[:m + w - 2 * L]
                hi_ = src[L:m + w - L]
                for t in range(m + w - 2 * L):
                    dst[t] = lo_[t] + hi_[t]
                L *= 2
                lv += 1
            first = True                           # w's binary digits, largest (oldest) first
            off = 0
            while L >= 1:
                if w & L:
                    v = runs[lv][off:off + m]
                    if first:
                        for t in range(m):
                            sc[t] = v[t]
                        first = False
                    else:
                        for t in range(m):
                            sc[t] += v[t]
                    off += L
                L //= 2
                lv -= 1
            cw = close[i - w:b1 - w]
            cc = close[i:b1]
            for t in range(m):
                den = sc[t]
                er = abs(cc[t] - cw[t]) / den if den != 0 else 0.0
                u = er * fd + ssc
                sc[t] = u * u
        else:
            for t in range(m):
                sc[t] = _kama_sc(close, i + t, w, fd, ssc)
        oo = out[i:b1]
        cc = close[i:b1]
        q4 = m // 4
        for q in range(q4):
            t = 4 * q
            k1, k2, k3, k4 = _kama4(k, sc[t], sc[t + 1], sc[t + 2], sc[t + 3],
                                    cc[t], cc[t + 1], cc[t + 2], cc[t + 3])
            oo[t] = k1
            oo[t + 1] = k2
            oo[t + 2] = k3
            oo[t + 3] = k4
            k = k4
        r = m - 4 * q4
        if r > 0:                                  # the last partial group (hi only)
            t = 4 * q4
            s2 = sc[t + 1] if r > 1 else 0.0
            s3 = sc[t + 2] if r > 2 else 0.0
            c2 = cc[t + 1] if r > 1 else 0.0
            c3 = cc[t + 2] if r > 2 else 0.0
            k1, k2, k3, k4 = _kama4(k, sc[t], s2, s3, 0.0, cc[t], c2, c3, 0.0)
            oo[t] = k1
            k = k1
            if r > 1:
                oo[t + 1] = k2
                k = k2
            if r > 2:
                oo[t + 2] = k3
                k = k3
        i = b1
    st[0] = k


@jit
def _kama_direct(close, w, fd, ssc, out):
    st = np.empty(1)
    lo = _kama_init(close, w, fd, ssc, out, st)
    _kama_rows(close, w, fd, ssc, out, lo, close.shape[0], st)


@jit
def _kama_summed(close, window, fast, slow, out):
    """`kama` for long windows: the |change| window sum as a guarded running sum."""
    n = close.shape[0]
    vol = np.empty(n)
    for i in range(n):
        vol[i] = abs(close[i] - close[i - 1]) if i > 0 else 0.0
    den = np.empty(n)
    rolling_sum(vol, window, window, den)
    fsc = 2.0 / (fast + 1)
    ssc = 2.0 / (slow + 1.0)
    first = True
    k = NAN                              # the previous KAMA value, kept in a register
    for i in range(n):
        if i < window - 1:
            out[i] = NAN
            continue
        if i >= window:
            num = abs(close[i] - close[i - window])
        else:
            num = 0.0                    # unused: the first value is the close
        dd = den[i]
        er = num / dd if dd != 0 else 0.0
        t = er * (fsc - ssc) + ssc
        sc = t * t                       # (the same bits as ** 2.0)
        if sc != sc:
            out[i] = NAN
            k = NAN
        elif first:
            k = close[i]
            out[i] = k
            first = False
        else:
            k = k + sc * (close[i] - k)
            out[i] = k


@jit
def kama(close, window, fast, slow, out):
    """`ta.momentum.KAMAIndicator(close, window, pow1=fast, pow2=slow).kama()`.

    Efficiency ratio |c - c[t-window]| / rolling sum of |one-row change|; the first value with
    a full window is the close itself. (ta's first change wraps around to the last row via
    np.roll; here it is 0, so nothing depends on a later row; the first KAMA value is the close
    either way.) Windows up to KAMA_DIRECT_MAX rows sum the window directly (a sum of
    non-negative terms: within w ulp of exact, no drift), blocks of finite rows in SIMD lanes
    with one multiply-add chain left per row; longer windows use a guarded running sum.
    """
    if window <= KAMA_DIRECT_MAX:
        _kama_direct(close, window, 2.0 / (fast + 1) - 2.0 / (slow + 1.0), 2.0 / (slow + 1.0), out)
    else:
        _kama_summed(close, window, fast, slow, out)

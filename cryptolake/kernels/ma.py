"""Moving averages: pandas-exact exponential means (row by row and four rows at a time),
numpy's pairwise sum, the weighted moving average. Rolling sums/means/max/min/std live in
`rolling.py`.

Every kernel reads float64 arrays and writes into a preallocated `out` of the same length.
The rolling sum/mean and the exponential mean replay pandas' own arithmetic (same Kahan
compensation, same constant-run shortcut, same NaN/min_periods rules), so they agree with
pandas to the last bit on ordinary data. Imports only numpy, numba and `_jit`.
"""
from __future__ import annotations

import numpy as np

from ._jit import jit, register_warmup

NAN = np.nan


# ---------------------------------------------------------------- smoothing constants (python)
def alpha_from_span(span: float) -> float:
    """The alpha pandas uses for `ewm(span=span)` (via its centre of mass, bit for bit)."""
    com = (span - 1) / 2.0
    return 1.0 / (1.0 + com)


def alpha_from_alpha(alpha: float) -> float:
    """The alpha pandas uses for `ewm(alpha=alpha)` (it round-trips through the centre of mass)."""
    com = (1.0 - alpha) / alpha
    return 1.0 / (1.0 + com)


# ---------------------------------------------------------------- exponential mean
@jit(inline="always")
def ewm_step(weighted, old_wt, nobs, cur, alpha):
    """One row of pandas' adjust=False exponential mean; state starts at (NaN, 1.0, 0).
    Returns the new (weighted, old_wt, nobs). +/-inf counts as missing, as in pandas."""
    if cur - cur == 0.0:
        nobs += 1
        if weighted == weighted:
            old_wt *= 1.0 - alpha
            if weighted != cur:
                d = old_wt + alpha
                if d == 1.0:             # (1 - alpha) + alpha is exactly 1 for every span and
                    weighted = old_wt * weighted + alpha * cur   # window: skip the / 1.0
                elif alpha == 0.5:       # after a gap pandas weighs com == 1 (alpha 0.5) so
                    weighted = old_wt * weighted + (1.0 - old_wt) * cur   # (checked bitwise)
                else:
                    weighted = (old_wt * weighted + alpha * cur) / d
            old_wt = 1.0
        else:
            weighted = cur
    elif weighted == weighted:
        old_wt *= 1.0 - alpha
    return weighted, old_wt, nobs


@jit(inline="always")
def ema4(y, x1, x2, x3, x4, a, f, f2, f3, f4):
    """Four rows of y <- f*y + a*x with one multiply-add on the dependency chain per four rows
    (the x terms are folded off the chain). Differs from the row-by-row recurrence by a few
    ulp, which the EMA's contraction keeps from growing."""
    b1 = a * x1
    b2 = f * b1 + a * x2
    b3 = f * b2 + a * x3
    b4 = f * b3 + a * x4
    y1 = f * y + b1
    y2 = f2 * y + b2
    y3 = f3 * y + b3
    y4 = f4 * y + b4
    if x1 == y:
        # pandas keeps the value exactly while the input equals it (a flat market stays
        # flat): row k is y itself when x1..xk all equal y (row k depends on x1..xk only)
        y1 = y
        if x2 == y:
            y2 = y
            if x3 == y:
                y3 = y
                if x4 == y:
                    y4 = y
    return y1, y2, y3, y4


@jit
def ema_fast(x, alpha, minp, out):
    """The part of `ewm_mean` that is finite after a NaN prefix: pandas' recurrence (weights
    (1-alpha) and alpha sum to exactly 1) four rows at a time; ~1e-15 relative of pandas.
    Stops before the first NaN/inf after the prefix and returns (index, last value, nobs)."""
    n = x.shape[0]
    f0 = 0
    while f0 < n and x[f0] - x[f0] != 0.0:
        f0 += 1
    for i in range(f0):
        out[i] = NAN
    if f0 >= n:
        return n, NAN, 0
    f = 1.0 - alpha
    f2 = f * f
    f3 = f2 * f
    f4 = f3 * f
    y = x[f0]
    out[f0] = y
    i = f0 + 1
    while i + 4 <= n:
        x1 = x[i]
        x2 = x[i + 1]
        x3 = x[i + 2]
        x4 = x[i + 3]
        if (x1 - x1) + (x2 - x2) + (x3 - x3) + (x4 - x4) != 0.0:
            break                      # a NaN/inf in this block: finish it row-wise below
        y1, y2, y3, y4 = ema4(y, x1, x2, x3, x4, alpha, f, f2, f3, f4)
        out[i] = y1
        out[i + 1] = y2
        out[i + 2] = y3
        out[i + 3] = y4
        y = y4
        i += 4
    j = i
    while j < n and j < i + 4 and x[j] - x[j] == 0.0:
        j += 1
    r = j - i                          # last partial block: the same formulas, so that a
    if r > 0:                          # prefix of the input gives a prefix of the output
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
    for k in range(f0, min(j, f0 + minp - 1)):
        out[k] = NAN
    return j, y, j - f0


@jit
def ewm_mean(x, alpha, minp, out):
    """`pd.Series(x).ewm(alpha=alpha, adjust=False, min_periods=minp).mean()` (ignore_na=False).

    Pass `alpha` through `alpha_from_span`/`alpha_from_alpha`. Up to the first NaN/inf after
    the leading NaNs it runs `ema_fast` (~1e-15 relative of pandas); from there on it replays
    pandas row by row, bit for bit.
    Leading NaNs are skipped; an interior NaN keeps the previous value and decays its weight
    as pandas does (including pandas' own rule for alpha == 0.5 after a gap).
    """
    start = 0
    weighted = NAN
    old_wt = 1.0
    nobs = 0
    if (1.0 - alpha) + alpha == 1.0:
        start, weighted, nobs = ema_fast(x, alpha, minp, out)
    for i in range(start, x.shape[0]):
        weighted, old_wt, nobs = ewm_step(weighted, old_wt, nobs, x[i], alpha)
        out[i] = weighted if nobs >= minp else NAN


@jit(inline="always")
def _np_block(a, lo, n):
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    i = 8
    m = n - (n % 8)
    while i < m:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@jit
def np_sum(a, lo, n):
    """`a[lo:lo+n].sum()` with numpy's own pairwise summation order (bit for bit), so that
    window statistics `ta` computes with `np.mean` inside `rolling.apply` are reproduced.
    (numpy's recursion is unrolled onto an explicit stack: numba's cache cannot hold
    recursive functions.)"""
    if n <= 128:
        return _np_block(a, lo, n)
    los = np.empty(64, np.int64)
    ns = np.empty(64, np.int64)
    left_done = np.zeros(64, np.bool_)
    lefts = np.empty(64)
    sp = 0
    los[0] = lo
    ns[0] = n
    while True:
        m = ns[sp]
        if m > 128:                      # split: push the left half
            h = m // 2
            h -= h % 8
            left_done[sp] = False
            los[sp + 1] = los[sp]
            ns[sp + 1] = h
            sp += 1
            continue
        r = _np_block(a, los[sp], m)
        sp -= 1
        while sp >= 0:                   # hand the result to the parent
            if not left_done[sp]:
                lefts[sp] = r
                left_done[sp] = True
                h = ns[sp] // 2
                h -= h % 8
                los[sp + 1] = los[sp] + h
                ns[sp + 1] = ns[sp] - h
                sp += 1
                break
            r = lefts[sp] + r
            sp -= 1
        if sp < 0:
            return r


# ---------------------------------------------------------------- weighted moving average
@jit
def wma(x, w, out):
    """`ta.trend.WMAIndicator(x, w).wma()`: weights 1..w normalised by w(w+1)/2, NaN until w
    rows and wherever the window holds a NaN. O(n): running plain and weighted sums, rebuilt
    every w rows to stop drift. +/-inf counts as missing (pandas' rule for every window op)."""
    n = x.shape[0]
    norm = 2.0 / (w * (w + 1.0))
    tot = 0.0
    wsum = 0.0
    nans = 0
    for i in range(n):
        if i % w == 0 or i < w:          # rebuild the sums over the window ending at i
            lo = i - w + 1
            if lo < 0:
                lo = 0
            tot = 0.0
            wsum = 0.0
            nans = 0
            for j in range(lo, i + 1):
                v = x[j]
                if v - v == 0.0:
                    tot += v
                    wsum += (j - i + w) * v
                else:
                    nans += 1
        else:
            old = x[i - w]
            v = x[i]
            # wsum_i = wsum_{i-1} - tot_{i-1} + w * x_i  (every weight drops by one)
            if old - old == 0.0:
                wsum -= tot
                tot -= old
            else:
                nans -= 1
                wsum -= tot
            if v - v == 0.0:
                wsum += w * v
                tot += v
            else:
                nans += 1
        if i >= w - 1 and nans == 0:
            out[i] = wsum * norm
        else:
            out[i] = NAN


@register_warmup
def _warm():
    x = np.array([1.0, 2.0, np.nan, 4.0, 3.0, 5.0])
    y = np.array([1.0, 2.0, 3.0, 4.0, 3.0, 5.0])
    o = np.empty_like(x)
    for v in (x, y):
        ewm_mean(v, 0.5, 2, o)
        wma(v, 3, o)
    np_sum(y, 0, 6)

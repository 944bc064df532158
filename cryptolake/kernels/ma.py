"""Moving-window building blocks: exponential means, rolling sums/means, rolling max/min,
rolling standard deviation, weighted moving average.

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
                weighted = old_wt * weighted + alpha * cur
                d = old_wt + alpha
                if d != 1.0:             # (1 - alpha) + alpha is exactly 1 for every span
                    weighted /= d        # and window we use: x / 1.0 == x, so skip the divide
            old_wt = 1.0
        else:
            weighted = cur
    elif weighted == weighted:
        old_wt *= 1.0 - alpha
    return weighted, old_wt, nobs


@jit
def ewm_mean(x, alpha, minp, out):
    """`pd.Series(x).ewm(alpha=alpha, adjust=False, min_periods=minp).mean()` (ignore_na=False).

    Pass `alpha` through `alpha_from_span`/`alpha_from_alpha` to match pandas bit for bit.
    Leading NaNs are skipped; an interior NaN keeps the previous value and decays its weight
    as pandas does (pandas takes another path when alpha == 0.5 exactly and a NaN sits inside
    the series: there the value after the gap differs).
    """
    weighted = NAN
    old_wt = 1.0
    nobs = 0
    for i in range(x.shape[0]):
        weighted, old_wt, nobs = ewm_step(weighted, old_wt, nobs, x[i], alpha)
        out[i] = weighted if nobs >= minp else NAN


@jit
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


# ---------------------------------------------------------------- rolling sum / mean
@jit
def _rolling_sum_mean(x, w, minp, out, mean):
    n = x.shape[0]
    nobs = 0
    neg = 0
    s = 0.0
    c_add = 0.0
    c_rem = 0.0
    same = 0
    prev = NAN
    for i in range(n):
        lo = i - w + 1
        if lo < 0:
            lo = 0
        if i == 0 or lo >= i:          # first row, or a window of one: start afresh (as pandas)
            nobs = 0
            neg = 0
            s = 0.0
            c_add = 0.0
            c_rem = 0.0
            same = 0
            prev = x[lo]
        elif i - w >= 0:                # drop the row leaving the window
            v = x[i - w]
            if v - v == 0.0:
                nobs -= 1
                y = -v - c_rem
                t = s + y
                c_rem = t - s - y
                s = t
                if v < 0 or (v == 0 and np.signbit(v)):
                    neg -= 1
        v = x[i]
        if v - v == 0.0:                      # add the new row
            nobs += 1
            y = v - c_add
            t = s + y
            c_add = t - s - y
            s = t
            if v < 0 or (v == 0 and np.signbit(v)):
                neg += 1
            if v == prev:
                same += 1
            else:
                same = 1
            prev = v
        if mean:
            if nobs >= minp and nobs > 0:
                r = s / nobs
                if same >= nobs:
                    r = prev
                elif neg == 0 and r < 0:
                    r = 0.0
                elif neg == nobs and r > 0:
                    r = 0.0
                out[i] = r
            else:
                out[i] = NAN
        else:
            if nobs == 0 and minp == 0:
                out[i] = 0.0
            elif nobs >= minp:
                out[i] = prev * nobs if same >= nobs else s
            else:
                out[i] = NAN


@jit
def all_finite(x):
    """True when x holds no NaN or inf (a vectorised pass)."""
    acc = 0.0
    for i in range(x.shape[0]):
        acc += x[i] - x[i]
    return acc == 0.0


@jit
def _fast_sum_mean(x, w, minp, out, mean):
    # Finite input only. Plain running sum (one add on the dependency chain), rebuilt exactly
    # whenever it has shrunk 1e4-fold from its recent peak (cancellation: a big value left a
    # window of small ones) and every 65536 rows; a window of equal values gives the value
    # itself (pandas' own shortcut), so all-zero windows sum to exactly 0.
    n = x.shape[0]
    s = 0.0
    big = 0.0
    same = 0
    prev = NAN
    for i in range(n):
        v = x[i]
        if i >= w:
            s += v - x[i - w]
        else:
            s += v
        if v == prev:
            same += 1
        else:
            same = 1
            prev = v
        nobs = i + 1 if i < w else w
        a = abs(s)
        if a > big:
            big = a
        elif a < big * 1e-4 or (i & 65535) == 65535:
            s = 0.0
            for j in range(i - nobs + 1, i + 1):
                s += x[j]
            big = abs(s)
        if nobs >= minp:
            if mean:
                out[i] = prev if same >= nobs else s / nobs
            else:
                out[i] = prev * nobs if same >= nobs else s
        else:
            out[i] = NAN


@jit
def rolling_mean(x, w, minp, out):
    """`pd.Series(x).rolling(w, min_periods=minp).mean()` in O(n). Finite input takes a plain
    running sum (guarded against cancellation, ~1e-13 relative of pandas); input with NaN/inf
    replays pandas' Kahan-compensated add/remove bit for bit. As in pandas, +/-inf counts as
    missing in every rolling kernel here."""
    if all_finite(x):
        _fast_sum_mean(x, w, minp, out, True)
    else:
        _rolling_sum_mean(x, w, minp, out, True)


@jit
def rolling_mean_exact(x, w, minp, out):
    """`pd.Series(x).rolling(w, min_periods=minp).mean()` replaying pandas' Kahan-compensated
    add/remove bit for bit (for callers that divide by something tiny, e.g. CCI)."""
    _rolling_sum_mean(x, w, minp, out, True)


@jit
def rolling_sum(x, w, minp, out):
    """`pd.Series(x).rolling(w, min_periods=minp).sum()` in O(n); fast path and exact replay as
    in `rolling_mean`."""
    if all_finite(x):
        _fast_sum_mean(x, w, minp, out, False)
    else:
        _rolling_sum_mean(x, w, minp, out, False)


# ---------------------------------------------------------------- rolling max / min
@jit
def _rolling_extreme(x, w, minp, out, is_max):
    n = x.shape[0]
    q = np.empty(w + 1, np.int64)      # ring buffer of indices, values monotonic
    head = 0
    size = 0
    cap = w + 1
    nobs = 0
    for i in range(n):
        if i - w >= 0:
            old = x[i - w]
            if old - old == 0.0:
                nobs -= 1
            if size > 0 and q[head] <= i - w:
                head = (head + 1) % cap
                size -= 1
        v = x[i]
        if v - v == 0.0:
            nobs += 1
            while size > 0:
                last = q[(head + size - 1) % cap]
                if (is_max and x[last] <= v) or ((not is_max) and x[last] >= v):
                    size -= 1
                else:
                    break
            q[(head + size) % cap] = i
            size += 1
        if nobs >= minp and size > 0:
            out[i] = x[q[head]]
        else:
            out[i] = NAN


@jit
def _vhgw(x, w, minp, out, is_max):
    # van Herk / Gil-Werman, finite input: per block of w rows a prefix extreme (scratch g)
    # and a suffix extreme (into out); the window ending at i is extreme(suffix[i-w+1],
    # prefix[i]). Three comparisons per row, no data-dependent branches.
    n = x.shape[0]
    g = np.empty(n)
    for b0 in range(0, n, w):
        b1 = min(b0 + w, n)
        m = x[b0]
        for i in range(b0, b1):
            v = x[i]
            if is_max:
                m = v if v > m else m
            else:
                m = v if v < m else m
            g[i] = m
        m = x[b1 - 1]
        for i in range(b1 - 1, b0 - 1, -1):
            v = x[i]
            if is_max:
                m = v if v > m else m
            else:
                m = v if v < m else m
            out[i] = m
    for i in range(n - 1, w - 1, -1):
        a = out[i - w + 1]
        b = g[i]
        if is_max:
            out[i] = a if a > b else b
        else:
            out[i] = a if a < b else b
    for i in range(min(w, n)):              # partial windows: the running extreme
        out[i] = g[i] if i + 1 >= minp and i + 1 >= 1 else NAN
    if w <= n and w < minp:
        for i in range(w, n):
            out[i] = NAN


@jit
def rolling_max(x, w, minp, out):
    """`pd.Series(x).rolling(w, min_periods=minp).max()`, exact. Finite input: van Herk /
    Gil-Werman (O(n), branch-free); with NaN/inf: a monotonic deque skipping them."""
    if all_finite(x):
        _vhgw(x, w, minp, out, True)
    else:
        _rolling_extreme(x, w, minp, out, True)


@jit
def rolling_min(x, w, minp, out):
    """`pd.Series(x).rolling(w, min_periods=minp).min()`, exact (see `rolling_max`)."""
    if all_finite(x):
        _vhgw(x, w, minp, out, False)
    else:
        _rolling_extreme(x, w, minp, out, False)


# ---------------------------------------------------------------- rolling standard deviation
@jit
def rolling_std(x, w, minp, ddof, out):
    """`pd.Series(x).rolling(w, min_periods=minp).std(ddof=ddof)` computed to near-exact accuracy.

    pandas' online variance drifts (up to ~1e-5 relative on long series); this keeps Kahan sums
    of (x - K) and (x - K)^2 around a shift K re-centred on the window mean every w rows (the
    sums are rebuilt then, O(n) overall), so it agrees with an exact two-pass computation to
    ~1e-12. A window whose values are all equal gives exactly 0.
    """
    n = x.shape[0]
    k = 0.0
    s1 = 0.0
    s2 = 0.0
    c1 = 0.0
    c2 = 0.0
    nobs = 0
    same = 0
    prev = NAN
    for i in range(n):
        lo = i - w + 1
        if lo < 0:
            lo = 0
        if i % w == 0:                  # rebuild around the current window's mean
            tot = 0.0
            cnt = 0
            for j in range(lo, i):
                v = x[j]
                if v - v == 0.0:
                    tot += v
                    cnt += 1
            k = tot / cnt if cnt > 0 else (x[i] if x[i] - x[i] == 0.0 else 0.0)
            s1 = 0.0
            s2 = 0.0
            c1 = 0.0
            c2 = 0.0
            nobs = 0
            for j in range(lo, i):
                v = x[j]
                if v - v == 0.0:
                    d = v - k
                    y = d - c1
                    t = s1 + y
                    c1 = (t - s1) - y
                    s1 = t
                    y = d * d - c2
                    t = s2 + y
                    c2 = (t - s2) - y
                    s2 = t
                    nobs += 1
        elif i - w >= 0:
            v = x[i - w]
            if v - v == 0.0:
                d = v - k
                y = -d - c1
                t = s1 + y
                c1 = (t - s1) - y
                s1 = t
                y = -d * d - c2
                t = s2 + y
                c2 = (t - s2) - y
                s2 = t
                nobs -= 1
        v = x[i]
        if v - v == 0.0:
            d = v - k
            y = d - c1
            t = s1 + y
            c1 = (t - s1) - y
            s1 = t
            y = d * d - c2
            t = s2 + y
            c2 = (t - s2) - y
            s2 = t
            nobs += 1
            if v == prev:
                same += 1
            else:
                same = 1
            prev = v
        if nobs >= minp and nobs > ddof:
            if same >= nobs:
                out[i] = 0.0
            else:
                var = (s2 - s1 * s1 / nobs) / (nobs - ddof)
                out[i] = np.sqrt(var) if var > 0 else 0.0
        else:
            out[i] = NAN


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
    o = np.empty_like(x)
    ewm_mean(x, 0.5, 2, o)
    rolling_mean(x, 3, 3, o)
    rolling_sum(x, 3, 3, o)
    rolling_max(x, 3, 3, o)
    rolling_min(x, 3, 3, o)
    rolling_std(x, 3, 3, 0, o)
    rolling_mean_exact(x, 3, 3, o)
    y = np.array([1.0, 2.0, 3.0, 4.0, 3.0, 5.0])
    rolling_mean(y, 3, 3, o)
    rolling_sum(y, 3, 3, o)
    rolling_max(y, 3, 3, o)
    rolling_min(y, 3, 3, o)
    wma(x, 3, o)

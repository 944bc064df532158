"""Rolling-window building blocks: sums and means (fast guarded running sums, and pandas'
own Kahan arithmetic replayed), max/min (van Herk / Gil-Werman, or a monotonic deque around
NaNs), and a near-exact standard deviation.

Every kernel reads float64 arrays and writes into a preallocated `out` of the same length;
+/-inf counts as missing as in pandas. Imports only numpy, numba and `_jit`.
"""
from __future__ import annotations

import numpy as np

from ._jit import jit, register_warmup
from ._sums import all_finite, finite_sum  # noqa: F401

NAN = np.nan


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
def finite_from(x):
    """Index f such that x[:f] is all NaN and x[f:] is all finite (the shape of an indicator's
    warm-up), or -1 when x is not of that shape. Window ops on such input equal the same op
    on x[f:] with NaN in front."""
    n = x.shape[0]
    f = 0
    while f < n and x[f] != x[f]:
        f += 1
    return f if all_finite(x[f:]) else -1


@jit
def _fast_sum_mean(x, w, minp, out, mean):
    # One running sum (one add on the dependency chain), NaN/inf counted as missing. Rebuilt
    # exactly whenever it has shrunk 1e4-fold from its recent peak (cancellation: a big value
    # left a window of small ones) and every 65536 rows (both decided by past rows only, so a
    # prefix of the input gives a prefix of the output). A window of equal values gives the
    # value itself (pandas' shortcut), so all-zero windows sum to exactly 0. ~1e-13 relative
    # of pandas' Kahan sums. Blocks of rows that are all finite take a loop without the
    # missing-value bookkeeping; both loops do the same arithmetic, so results do not depend
    # on which one ran.
    n = x.shape[0]
    s = 0.0
    big = 0.0
    prev = NAN
    last = -1                           # row where the current run of equal values began
    nobs = 0
    B = 2048
    for b0 in range(0, n, B):
        b1 = min(b0 + B, n)
        if nobs == min(b0, w) and all_finite(x[max(b0 - w, 0):b1]):
            for i in range(b0, b1):
                v = x[i]
                s += v - x[i - w] if i >= w else v
                nobs = i + 1 if i < w else w
                last = last if v == prev else i
                prev = v
                a = abs(s)
                big = a if a > big else big
                if a < big * 1e-4 or (i & 65535) == 65535:
                    s = 0.0
                    for j in range(max(i - w + 1, 0), i + 1):
                        s += x[j]
                    big = abs(s)
                if nobs >= minp:
                    if mean:
                        out[i] = prev if i - last + 1 >= nobs else s / nobs
                    else:
                        out[i] = prev * nobs if i - last + 1 >= nobs else s
                else:
                    out[i] = NAN
            continue
        for i in range(b0, b1):
            v = x[i]
            ok = v - v == 0.0
            nobs += 1 if ok else 0
            if i >= w:
                u = x[i - w]
                uok = u - u == 0.0
                s += (v if ok else 0.0) - (u if uok else 0.0)
                nobs -= 1 if uok else 0
            else:
                s += v if ok else 0.0
            if ok and v != prev:
                last = i
                prev = v
            # equal values separated by NaN still form a run (pandas counts adds)
            run = 0
            if prev == prev:
                run = nobs
                for j in range(max(i - w + 1, 0), i + 1):
                    u = x[j]
                    if u - u == 0.0 and u != prev:
                        run = 0
                        break
            a = abs(s)
            big = a if a > big else big
            if a < big * 1e-4 or (i & 65535) == 65535:
                s = 0.0
                for j in range(max(i - w + 1, 0), i + 1):
                    u = x[j]
                    if u - u == 0.0:
                        s += u
                big = abs(s)
            if nobs >= minp and nobs > 0:
                if mean:
                    out[i] = prev if run >= nobs else s / nobs
                else:
                    out[i] = prev * nobs if run >= nobs else s
            else:
                out[i] = 0.0 if (nobs == 0 and minp == 0 and not mean) else NAN


@jit(inline="always")
def gsum_step(s, big, nobs, last, prev, v, u, i, w, guard):
    """One row of a guarded running window sum for fused kernels: adds v (row i), drops u
    (row i-w; pass NaN while i < w); NaN/inf count as missing. Returns the new
    (s, big, nobs, last, prev, rebuild): `rebuild` asks the caller to re-sum the window
    exactly (every 65536 rows, and with `guard` on cancellation: for sums of non-negative
    terms used as denominators); `last`/`prev` track the run of equal values (the window is
    one value when last <= i - min(i+1, w) + 1)."""
    ok = v - v == 0.0
    uok = u - u == 0.0
    s += (v if ok else 0.0) - (u if uok else 0.0)
    nobs += (1 if ok else 0) - (1 if uok else 0)
    last = i if (ok and v != prev) else last
    prev = v if ok else prev
    a = abs(s)
    big = a if a > big else big
    return s, big, nobs, last, prev, (guard and a < big * 1e-4) or (i & 65535) == 65535


@jit(inline="always")
def gsum_value(s, nobs, last, prev, i, w, minp):
    """The window sum after `gsum_step` (NaN below min_periods; the run's value times nobs for
    a window of equal values, so all-zero windows sum to exactly 0)."""
    if nobs < minp or nobs == 0:
        return NAN
    rows = i + 1 if i < w else w
    return prev * nobs if last <= i - rows + 1 else s


@jit(inline="always")
def _run_start(x, i, w):
    """The row where the run of equal values ending at row i began (looking back at most w
    rows; finite x)."""
    v = x[i]
    j = i
    while j > 0 and j > i - w and x[j - 1] == v:
        j -= 1
    return j


@jit(inline="always")
def _runs(v, i, pv, lastfin, lastq):
    """Track runs of equal finite values (NaN/inf skipped: pandas counts a run by its adds):
    `pv` the last finite value, `lastfin` its row, `lastq` the row of the last finite value
    that differs from the one after it. The finite values of a window starting at row lo are
    all equal (to pv) exactly when lastq < lo."""
    if v - v == 0.0:
        if v != pv and pv == pv:
            lastq = lastfin
        pv = v
        lastfin = i
    return pv, lastfin, lastq


@jit
def _block_mean(x, w, minp, out, b0, b1):
    """Rows b0 .. b1-1 of `rolling_mean`; b0 is a multiple of `_mean_block(w)`. The running sum
    restarts here from an in-order sum of the finite values of the window ending at b0 - 1, so
    a row's value depends on rows >= b0 - w only (no drift beyond one block, no look-ahead)."""
    s = 0.0
    nobs = 0
    for j in range(max(b0 - w, 0), b0):
        u = x[j]
        if u - u == 0.0:
            s += u
            nobs += 1
    invw = 1.0 / w
    m = b1 - b0
    if w >= 2 and b0 >= w and nobs == w and minp <= w:
        # slices indexed from 0: numba then drops its negative-index wraparound per access
        xa = x[b0:b1]
        xb = x[b0 - w:b1 - w]
        xp = x[b0 - 1:b1 - 1]
        o = out[b0:b1]
        s0 = s
        nrep = 0
        for t in range(m):
            v = xa[t]
            s += v - xb[t]
            nrep += 1 if v == xp[t] else 0
            o[t] = s * invw
        if s - s == 0.0:
            # every row was finite (a NaN/inf would have left s NaN/inf): one add and one
            # multiply per row, no branches. Runs of equal values give exactly that value.
            if nrep > 0:                      # runs of equal values: exactly that value
                last = _run_start(x, b0 - 1, w) - b0
                for t in range(m):
                    v = xa[t]
                    if v != xp[t]:
                        last = t
                    elif t - last + 1 >= w:
                        o[t] = v
            return
        s = s0
    pv = NAN
    lastfin = -1
    lastq = -1
    for j in range(max(b0 - w, 0), b0):
        pv, lastfin, lastq = _runs(x[j], j, pv, lastfin, lastq)
    for i in range(b0, b1):
        # the same arithmetic as the fast loop on finite rows (missing rows add 0)
        v = x[i]
        ok = v - v == 0.0
        u = x[i - w] if i >= w else NAN
        uok = u - u == 0.0
        s += (v if ok else 0.0) - (u if uok else 0.0)
        nobs += (1 if ok else 0) - (1 if uok else 0)
        pv, lastfin, lastq = _runs(v, i, pv, lastfin, lastq)
        if nobs >= minp and nobs > 0:
            if lastq < max(i - w + 1, 0):
                out[i] = pv
            elif nobs == w:
                out[i] = s * invw
            else:
                out[i] = s / nobs
        else:
            out[i] = NAN


@jit(inline="always")
def _mean_block(w):
    return max(1024, w)


@jit
def rolling_mean(x, w, minp, out):
    """`pd.Series(x).rolling(w, min_periods=minp).mean()` in O(n), at about the cost of one
    add and one multiply per row: a plain running sum restarted from an in-order sum of its
    window every max(1024, w) rows (fixed rows, so a prefix of the input gives a prefix of the
    output), divided by multiplying with 1/w. Its error is at most a few hundred ulp of the
    window sums in its block (TA-Lib's running sum drifts over the whole series; pandas'
    Kahan sum is `rolling_mean_exact`). A window of equal values gives that value exactly, as
    in pandas. As in pandas, +/-inf counts as missing in every rolling kernel here."""
    rolling_mean_rows(x, w, minp, out, 0, x.shape[0])


@jit
def rolling_mean_rows(x, w, minp, out, lo, hi):
    """Rows lo .. hi-1 of `rolling_mean` (lo a multiple of `mean_block(w)`, hi one too or the
    series' end): its blocks are independent, so row ranges may run on different threads and
    give the whole call's values bit for bit."""
    B = _mean_block(w)
    for b0 in range(lo, hi, B):
        _block_mean(x, w, minp, out, b0, min(b0 + B, hi))


@jit
def mean_block(w):
    """Rows per block of `rolling_mean` (its row ranges start at multiples of this)."""
    return _mean_block(w)


@jit
def rolling_mean_guarded(x, w, minp, out):
    """`rolling_mean` for signed series with a wide range (a huge value leaving the window
    must not leave its rounding in the small ones after it): the running sum guarded against
    cancellation, re-summed when it falls far below what it held (~1e-13 relative of pandas)."""
    _fast_sum_mean(x, w, minp, out, True)


@jit
def rolling_mean_exact(x, w, minp, out):
    """`pd.Series(x).rolling(w, min_periods=minp).mean()` replaying pandas' Kahan-compensated
    add/remove bit for bit (for callers that divide by something tiny, e.g. CCI)."""
    _rolling_sum_mean(x, w, minp, out, True)


@jit
def rolling_sum(x, w, minp, out):
    """`pd.Series(x).rolling(w, min_periods=minp).sum()` in O(n), as `rolling_mean`."""
    _fast_sum_mean(x, w, minp, out, False)


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
    f = finite_from(x)
    if f >= 0:
        out[:f] = NAN
        _vhgw(x[f:], w, minp, out[f:], True)
    else:
        _rolling_extreme(x, w, minp, out, True)


@jit
def rolling_min(x, w, minp, out):
    """`pd.Series(x).rolling(w, min_periods=minp).min()`, exact (see `rolling_max`)."""
    f = finite_from(x)
    if f >= 0:
        out[:f] = NAN
        _vhgw(x[f:], w, minp, out[f:], False)
    else:
        _rolling_extreme(x, w, minp, out, False)


@jit(inline="always")
def hilo_block(hi, lo, b0, w, sh, sl, hh, ll):
    """Rows b0 .. b0+w-1 (clipped to the series) of `rolling(w, min_periods=w).max()` of `hi`
    and `.min()` of `lo` into hh[t], ll[t] (t = row - b0), for finite input: van Herk /
    Gil-Werman one block of w rows at a time, so that a fused kernel reads each input once and
    its scratch stays in L1. b0 steps through 0, w, 2w, ...; sh/sl (length w + 1) carry the
    previous block's suffix extremes (start them at -inf/+inf). Returns False when the block
    holds a NaN/inf (the values are then meaningless: the caller takes its NaN-aware path)."""
    m = min(b0 + w, hi.shape[0]) - b0
    hs = hi[b0:b0 + m]                   # slices indexed from 0: no wraparound checks
    ls = lo[b0:b0 + m]
    ok = True
    mh = -np.inf
    ml = np.inf
    for t in range(m):
        h = hs[t]
        l = ls[t]
        ok &= (h - h == 0.0) & (l - l == 0.0)
        mh = h if h > mh else mh
        ml = l if l < ml else ml
        a = sh[t + 1]
        b = sl[t + 1]
        hh[t] = a if a > mh else mh
        ll[t] = b if b < ml else ml
    if b0 == 0:
        for t in range(min(w - 1, m)):
            hh[t] = NAN
            ll[t] = NAN
    mh = -np.inf
    ml = np.inf
    for t in range(m - 1, -1, -1):       # this block's suffix extremes, for the next block
        h = hs[t]
        l = ls[t]
        mh = h if h > mh else mh
        ml = l if l < ml else ml
        sh[t] = mh
        sl[t] = ml
    return ok


@jit(inline="always")
def hilo_scratch(w):
    """The four scratch buffers of `hilo_block`: sh, sl (initialised), hh, ll."""
    sh = np.full(w + 1, -np.inf)
    sl = np.full(w + 1, np.inf)
    return sh, sl, np.empty(w), np.empty(w)


# ---------------------------------------------------------------- rolling standard deviation
@jit
def _window_var(x, a, b, ddof):
    """Two-pass variance of the finite values of x[a:b] (divisor count - ddof)."""
    tot, cnt = finite_sum(x, a, b)
    mu = tot / cnt
    ss = 0.0
    for j in range(a, b):
        v = x[j]
        if v - v == 0.0:
            ss += (v - mu) * (v - mu)
    return ss / (cnt - ddof)


@jit
def _block_mean_var(x, w, minp, ddof, b0, b1, mo, vr):
    """Rows b0 .. b1-1 of `rolling_mean_std`. Returns (K, nrep): with nrep >= 0 the block was
    finite and vr[t], mo[t] (t = row - b0) hold the running sums of (x - K) and (x - K)^2 for
    `_finish_block`, nrep counting rows equal to the row before; with nrep = -1 they hold the
    mean and the variance (NaN-aware loop). Sums of (x - K) and (x - K)^2 restart at b0 around K, the mean of
    the window ending at b0 - 1, so a row depends on rows >= b0 - w only (no look-ahead).
    Finite blocks take a loop without branches; NaN/inf leave the sums non-finite, and the
    block is then rerun NaN-aware with the same arithmetic on finite windows."""
    lo = max(b0 - w, 0)
    tot, cnt = finite_sum(x, lo, b0)
    v0 = x[b0]
    k = tot / cnt if cnt > 0 else (v0 if v0 - v0 == 0.0 else 0.0)
    s1 = 0.0
    s2 = 0.0
    for j in range(lo, b0):
        v = x[j]
        if v - v == 0.0:
            d = v - k
            s1 += d
            s2 += d * d
    invw = 1.0 / w
    invd = 1.0 / (w - ddof) if w > ddof else NAN
    m = b1 - b0
    if w >= 2 and b0 >= w and cnt == w and minp <= w and w > ddof:
        xa = x[b0:b1]                    # slices indexed from 0: no wraparound per access
        xb = x[b0 - w:b1 - w]
        xp = x[b0 - 1:b1 - 1]
        t1 = s1
        t2 = s2
        nrep = 0
        a1 = vr                          # the running sums go through vr and mo (scratch)
        a2 = mo
        for t in range(m):               # the two dependency chains, nothing else
            v = xa[t]
            d = v - k
            e = xb[t] - k
            s1 += d - e
            s2 += d * d - e * e
            nrep += 1 if v == xp[t] else 0
            a1[t] = s1
            a2[t] = s2
        if s1 - s1 == 0.0 and s2 - s2 == 0.0:      # every row was finite
            return k, nrep
        s1 = t1
        s2 = t2
    nobs = cnt
    pv = NAN
    lastfin = -1
    lastq = -1
    for j in range(lo, b0):
        pv, lastfin, lastq = _runs(x[j], j, pv, lastfin, lastq)
    for i in range(b0, b1):
        v = x[i]
        ok = v - v == 0.0
        u = x[i - w] if i >= w else NAN
        uok = u - u == 0.0
        d = v - k if ok else 0.0
        e = u - k if uok else 0.0
        s1 += d - e
        s2 += d * d - e * e
        nobs += (1 if ok else 0) - (1 if uok else 0)
        pv, lastfin, lastq = _runs(v, i, pv, lastfin, lastq)
        t = i - b0
        if nobs >= minp and nobs > 0:
            if lastq < max(i - w + 1, 0):        # the window's finite values are all equal
                mo[t] = pv
                vr[t] = 0.0 if nobs > ddof else NAN
                continue
            if nobs == w:
                mo[t] = k + s1 * invw
                ss = s2 - s1 * s1 * invw
                var = ss * invd
            else:
                mo[t] = k + s1 / nobs
                ss = s2 - s1 * s1 / nobs
                var = ss / (nobs - ddof)
            if nobs <= ddof:
                vr[t] = NAN
            elif ss < 1e-4 * s2:
                vr[t] = _window_var(x, max(i - w + 1, 0), i + 1, ddof)
            else:
                vr[t] = var
        else:
            mo[t] = NAN
            vr[t] = NAN
    return k, -1


@jit(inline="always")
def _std_block(w):
    return max(512, w)


@jit
def rolling_mean_std(x, w, minp, ddof, mean, std):
    """Rolling mean and `pd.Series(x).rolling(w, min_periods=minp).std(ddof=ddof)` in one pass,
    the standard deviation near-exact.

    pandas' online variance drifts (up to ~1e-5 relative on long series); this keeps running
    sums of (x - K) and (x - K)^2 around a shift K, restarted on the window mean every
    max(512, w) rows (fixed rows: a prefix of the input gives a prefix of the output, also
    with NaNs), so it agrees with an exact two-pass computation to ~1e-12 relative (TA-Lib's
    running sums: ~5e-12). The mean is K + sum(x - K) / n (~1e-16 relative). A window whose
    values are all equal gives exactly that value and 0. Where the running form cancels more
    than four digits (a tiny spread far from K, e.g. a near-flat stretch after a jump), that
    row's variance is recomputed in two passes over its window. NaN/inf count as missing.
    """
    _mean_std_bands(x, w, minp, ddof, 0.0, False, mean, std, std)


@jit(inline="always")
def _put(mean, o1, o2, i, mu, var, kk, bands):
    sd = np.sqrt(var)
    mean[i] = mu
    if bands:
        o1[i] = mu + kk * sd
        o2[i] = mu - kk * sd
    else:
        o1[i] = sd


@jit
def _mean_std_bands(x, w, minp, ddof, kk, bands, mean, o1, o2):
    # bands=False: o1 = std; bands=True: o1 = mean + kk * std, o2 = mean - kk * std
    mean_std_bands_rows(x, w, minp, ddof, kk, bands, mean, o1, o2, 0, x.shape[0])


@jit
def std_block(w):
    """Rows per block of `rolling_mean_std` / bbands (row ranges start at multiples of this)."""
    return _std_block(w)


@jit
def mean_std_bands_rows(x, w, minp, ddof, kk, bands, mean, o1, o2, lo, hi):
    """Rows lo .. hi-1 of `_mean_std_bands` (lo a multiple of `std_block(w)`, hi one too or the
    series' end): blocks are independent, so row ranges may run on different threads and
    give the whole call's values bit for bit."""
    B = _std_block(w)
    _msb_rows(x, w, minp, ddof, kk, bands, mean, o1, o2, lo, hi, np.empty(B), np.empty(B))


@jit
def _msb_rows(x, w, minp, ddof, kk, bands, mean, o1, o2, lo, hi, a1, a2):
    # `mean_std_bands_rows` with its scratch (two arrays of `_std_block(w)` rows) passed in
    B = _std_block(w)
    invw = 1.0 / w
    invd = 1.0 / (w - ddof) if w > ddof else NAN
    for b0 in range(lo, hi, B):
        b1 = min(b0 + B, hi)
        m = b1 - b0
        k, nrep = _block_mean_var(x, w, minp, ddof, b0, b1, a2, a1)
        mo = mean[b0:b1]
        p1 = o1[b0:b1]
        p2 = o2[b0:b1]
        if nrep < 0:
            for t in range(m):
                _put(mo, p1, p2, t, a2[t], a1[t], kk, bands)
            continue
        nbad = 0
        for t in range(m):               # vectorised: mean, variance, bands of each row
            q1 = a1[t]
            q2 = a2[t]
            mu = k + q1 * invw
            ss = q2 - q1 * q1 * invw
            # most digits cancelled (a tiny spread far from K): two passes below
            nbad += 1 if ss < 1e-4 * q2 else 0
            _put(mo, p1, p2, t, mu, ss * invd, kk, bands)
        if nbad > 0:
            for t in range(m):
                q1 = a1[t]
                q2 = a2[t]
                ss = q2 - q1 * q1 * invw
                if ss < 1e-4 * q2:
                    var = _window_var(x, b0 + t - w + 1, b0 + t + 1, ddof)
                    _put(mo, p1, p2, t, k + q1 * invw, var, kk, bands)
        if nrep > 0:                     # runs of equal values: that value, variance 0
            xa = x[b0:b1]
            xp = x[b0 - 1:b1 - 1]
            last = _run_start(x, b0 - 1, w) - b0
            for t in range(m):
                v = xa[t]
                if v != xp[t]:
                    last = t
                elif t - last + 1 >= w:
                    _put(mo, p1, p2, t, v, 0.0, kk, bands)


@jit
def sma_bbands_rows(x, w, minp, mo, bw, kk, mid, up, dn, lo, hi, step):
    """`rolling_mean(x, w, minp, mo)` and bbands(x, bw, kk, (mid, up, dn)) on rows lo .. hi-1,
    `step` rows of one then of the other, so the second reads x from cache (step and lo
    multiples of both `mean_block(w)` and `std_block(bw)`): the same blocks, so the same
    bits as the two separate calls."""
    B = _std_block(bw)
    a1 = np.empty(B)
    a2 = np.empty(B)
    for c0 in range(lo, hi, step):
        c1 = min(c0 + step, hi)
        rolling_mean_rows(x, w, minp, mo, c0, c1)
        _msb_rows(x, bw, bw, 0, kk, True, mid, up, dn, c0, c1, a1, a2)


@jit
def rolling_std(x, w, minp, ddof, out):
    """`pd.Series(x).rolling(w, min_periods=minp).std(ddof=ddof)`, near-exact (see
    `rolling_mean_std`)."""
    rolling_mean_std(x, w, minp, ddof, np.empty_like(out), out)


@register_warmup
def _warm():
    x = np.array([1.0, 2.0, np.nan, 4.0, 3.0, 5.0])
    y = np.array([1.0, 2.0, 3.0, 4.0, 3.0, 5.0])
    o = np.empty_like(x)
    for v in (x, y):
        rolling_mean(v, 3, 3, o)
        rolling_sum(v, 3, 3, o)
        rolling_max(v, 3, 3, o)
        rolling_min(v, 3, 3, o)
        rolling_std(v, 3, 3, 0, o)
        rolling_mean_exact(v, 3, 3, o)

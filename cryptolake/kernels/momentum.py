"""Momentum kernels on one price series: rsi, macd, trix, tsi, roc, stoch_rsi, and kama
(which lives in kama.py; re-exported here). The high/low/close oscillators live in
oscillators.py.

Each reads float64 arrays and writes into preallocated outputs (`out` 1-D, or a tuple of 1-D
arrays, or a 2-D array, with one row per output column). Each docstring names the `ta` call it reproduces (with `fillna=False`).
Imports only numpy, numba and our own kernels.
"""
from __future__ import annotations

import numpy as np

from ._jit import jit, register_warmup
from ._ewm import (alpha_alpha, ewm_exact, ewm_hit, ewm_plain, ewm_step, exact_ok,
                   fresh_ewm_states, span_alpha)
from .kama import KAMA_BLOCK, KAMA_DIRECT_MAX, _kama_init, _kama_rows, kama  # noqa: F401
from .rolling import (
    finite_from,
    hilo_block,
    hilo_scratch,
    rolling_max,
    rolling_mean,
    rolling_min,
)

NAN = np.nan


@jit(inline="always")
def _rsi_value(up, dn):
    # ta's own form (bit for bit: stoch_rsi's flat windows depend on equal RSI values)
    r = 100.0 - 100.0 / (1.0 + up / dn)
    return 100.0 if dn == 0 else r


EWM_BLOCK = 512     # rows per steady-state block (its scratch stays in L1)


@jit
def _rsi_init(close, window, out, st):
    """The state before row 0 (see `_rsi_rows`); returns the first row to compute (0)."""
    st[0] = NAN
    st[1] = 1.0
    st[2] = NAN
    st[3] = 1.0
    st[4] = 0.0
    return 0


@jit
def _rsi_rows(close, window, out, lo, hi, st):
    """Rows lo .. hi-1 of `rsi`, resuming from the state st = (up, up_wt, dn, dn_wt, nobs
    capped at window) left by the rows before lo, and leaving the state at hi there (rows
    depend on the state and the inputs only, never on where a call or a block starts)."""
    n = hi
    a = alpha_alpha(1.0 / window)
    f = 1.0 - a
    steady = exact_ok(a)
    B = EWM_BLOCK
    up = st[0]
    up_wt = st[1]
    dn = st[2]
    dn_wt = st[3]
    nobs = int(st[4])
    general_to = 0                       # rows below this take the general row
    i = lo
    while i < n:
        if i >= general_to and steady and i > 0 and nobs >= window and up_wt == 1.0 \
                and dn_wt == 1.0 and up == up and dn == dn:
            b1 = min(i + B, n)
            m = b1 - i
            cc = close[i:b1]
            pc = close[i - 1:b1 - 1]
            oo = out[i:b1]
            u0 = up
            d0 = dn
            hit = False
            for t in range(m):           # speculative: no select on the chains
                d = cc[t] - pc[t]
                g = 0.0 if d <= 0 else d     # (as below for a finite d; a NaN d gives NaN
                l = -0.0 if d >= 0 else -d   # here, so a missing change poisons the block)
                hit = hit | ewm_hit(up, g) | ewm_hit(dn, l)
                up = ewm_plain(up, g, f, a)
                dn = ewm_plain(dn, l, f, a)
                oo[t] = _rsi_value(up, dn)
            if up - up == 0.0 and dn - dn == 0.0:   # every change was finite
                if hit:                  # a change equalled its average: replay with the skip
                    up = u0
                    dn = d0
                    for t in range(m):
                        d = cc[t] - pc[t]
                        g = d if d > 0 else 0.0
                        l = -d if d < 0 else -0.0
                        up = ewm_exact(up, g, f, a)
                        dn = ewm_exact(dn, l, f, a)
                        oo[t] = _rsi_value(up, dn)
                nobs += m
                i = b1
                continue
            up = u0                      # a missing or infinite change (a non-finite value
            dn = d0                      # never turns finite again): the general row
            general_to = b1
        d = close[i] - close[i - 1] if i > 0 else NAN
        g = d if d > 0 else 0.0
        l = -d if d < 0 else -0.0
        up, up_wt, _ = ewm_step(up, up_wt, nobs, g, a)
        dn, dn_wt, nobs = ewm_step(dn, dn_wt, nobs, l, a)
        out[i] = _rsi_value(up, dn) if nobs >= window else NAN
        i += 1
    st[0] = up
    st[1] = up_wt
    st[2] = dn
    st[3] = dn_wt
    st[4] = min(nobs, window)


@jit
def rsi(close, window, out):
    """`ta.momentum.RSIIndicator(close, window).rsi()`: Wilder smoothing as pandas
    `ewm(alpha=1/window, adjust=False, min_periods=window)` of gains and losses (the first
    row's missing change, and any change next to a NaN, counts as 0); 100 where the average
    loss is 0. pandas' row replayed bit for bit: once warm, blocks of EWM_BLOCK rows run the
    two recurrences over range-indexed slices (no negative-index checks), speculatively
    without pandas' equality skip (`ewm_plain`; replayed with `ewm_exact` where it would have
    applied); a block with a missing or infinite change is rolled back and replayed with the
    general row (`ewm_step`, the same bits on finite rows), so no value depends on where a
    block starts or on a later row. (`_rsi_init` + `_rsi_rows`: the resumable form that
    `ops._split_recur` runs on two cores.)"""
    st = np.empty(5)
    lo = _rsi_init(close, window, out, st)
    _rsi_rows(close, window, out, lo, close.shape[0], st)


@jit
def _macd_init(close, fast, slow, signal, o0, o1, o2, st):
    """The state before row 0 (see `_macd_rows`); returns the first row to compute (0)."""
    fresh_ewm_states(st, 3)
    return 0


@jit
def _macd_rows(close, fast, slow, signal, o0, o1, o2, lo, hi, st):
    """Rows lo .. hi-1 of `macd` from the state st = (ef, ewf, nf, es, ews, ns, eg, ewg, ng),
    the counts capped at their spans, left at hi in st (rows never depend on where a call or
    a block starts)."""
    af = span_alpha(fast)
    asl = span_alpha(slow)
    ag = span_alpha(signal)
    ff = 1.0 - af
    fs = 1.0 - asl
    fg = 1.0 - ag
    steady = exact_ok(af) and exact_ok(asl) and exact_ok(ag)
    ef = st[0]
    ewf = st[1]
    nf = int(st[2])
    es = st[3]
    ews = st[4]
    ns = int(st[5])
    eg = st[6]
    ewg = st[7]
    ng = int(st[8])
    n = hi
    B = EWM_BLOCK
    general_to = 0
    i = lo
    while i < n:
        if i >= general_to and steady and ng >= signal and ewf == 1.0 and ews == 1.0 \
                and ewg == 1.0 and nf >= fast and ns >= slow:
            b1 = min(i + B, n)
            m = b1 - i
            cc = close[i:b1]
            p0 = o0[i:b1]
            p1 = o1[i:b1]
            p2 = o2[i:b1]
            s0 = (ef, es, eg)
            hit = False
            for t in range(m):           # speculative: no select on the chains
                c = cc[t]
                h = ewm_hit(ef, c) | ewm_hit(es, c)
                ef = ewm_plain(ef, c, ff, af)
                es = ewm_plain(es, c, fs, asl)
                md = ef - es
                hit = hit | h | ewm_hit(eg, md)
                eg = ewm_plain(eg, md, fg, ag)
                p0[t] = md
                p1[t] = eg
                p2[t] = md - eg
            if ef - ef == 0.0 and es - es == 0.0 and eg - eg == 0.0:   # all rows finite
                if hit:                  # an input equalled its EMA: replay with the skip
                    ef, es, eg = s0
                    for t in range(m):
                        c = cc[t]
                        ef = ewm_exact(ef, c, ff, af)
                        es = ewm_exact(es, c, fs, asl)
                        md = ef - es
                        eg = ewm_exact(eg, md, fg, ag)
                        p0[t] = md
                        p1[t] = eg
                        p2[t] = md - eg
                nf += m
                ns += m
                ng += m
                i = b1
                continue
            ef, es, eg = s0              # a missing close: the general row
            general_to = b1
        c = close[i]
        ef, ewf, nf = ewm_step(ef, ewf, nf, c, af)
        es, ews, ns = ewm_step(es, ews, ns, c, asl)
        md = (ef if nf >= fast else NAN) - (es if ns >= slow else NAN)
        eg, ewg, ng = ewm_step(eg, ewg, ng, md, ag)
        sg = eg if ng >= signal else NAN
        o0[i] = md
        o1[i] = sg
        o2[i] = md - sg
        i += 1
    st[0] = ef
    st[1] = ewf
    st[2] = min(nf, fast)
    st[3] = es
    st[4] = ews
    st[5] = min(ns, slow)
    st[6] = eg
    st[7] = ewg
    st[8] = min(ng, signal)


@jit
def macd(close, fast, slow, signal, out):
    """`ta.trend.MACD(close, window_slow=slow, window_fast=fast, window_sign=signal)`:
    outputs macd(), macd_signal(), macd_diff(). Three pandas EMAs fused in one pass, with
    pandas' own arithmetic (bit for bit): MACD is a small difference of two EMAs near the
    price, so a few ulp of the price can exceed 1e-9 of its own size. Once all three are warm,
    blocks of EWM_BLOCK rows run over range-indexed slices, speculatively without pandas'
    equality skip (`ewm_plain`, replayed with `ewm_exact` where it applies); a block
    with a missing close is rolled back and replayed with the general row (`ewm_step`).
    (`_macd_init` + `_macd_rows`: the resumable form for `ops._split_recur`.)"""
    st = np.empty(9)
    o0 = out[0]
    o1 = out[1]
    o2 = out[2]
    lo = _macd_init(close, fast, slow, signal, o0, o1, o2, st)
    _macd_rows(close, fast, slow, signal, o0, o1, o2, lo, close.shape[0], st)


@jit
def ema_chain(x, window, depth, out):
    """`depth` nested `x.ewm(span=window, adjust=False, min_periods=window).mean()` (depth<=3),
    the last one written to `out`: ta's `_ema` applied `depth` times (TRIX's ema3)."""
    a = span_alpha(window)
    e1 = NAN
    w1 = 1.0
    n1 = 0
    e2 = NAN
    w2 = 1.0
    n2 = 0
    e3 = NAN
    w3 = 1.0
    n3 = 0
    for i in range(x.shape[0]):
        e1, w1, n1 = ewm_step(e1, w1, n1, x[i], a)
        v = e1 if n1 >= window else NAN
        if depth >= 2:
            e2, w2, n2 = ewm_step(e2, w2, n2, v, a)
            v = e2 if n2 >= window else NAN
        if depth >= 3:
            e3, w3, n3 = ewm_step(e3, w3, n3, v, a)
            v = e3 if n3 >= window else NAN
        out[i] = v


@jit
def _trix_init(close, window, out, st):
    """The state before row 0 (see `_trix_rows`); returns the first row to compute (0)."""
    fresh_ewm_states(st, 3)
    st[9] = NAN
    return 0


@jit
def _trix_rows(close, window, out, lo, hi, st):
    """Rows lo .. hi-1 of `trix` from the state st = (e1, w1, n1, e2, w2, n2, e3, w3, n3,
    prev), the counts capped at window, left at hi in st."""
    a = span_alpha(window)
    f = 1.0 - a
    steady = exact_ok(a)
    e1 = st[0]
    w1 = st[1]
    n1 = int(st[2])
    e2 = st[3]
    w2 = st[4]
    n2 = int(st[5])
    e3 = st[6]
    w3 = st[7]
    n3 = int(st[8])
    prev = st[9]
    n = hi
    B = EWM_BLOCK
    general_to = 0
    i = lo
    while i < n:
        if i >= general_to and steady and n3 >= window and w1 == 1.0 and w2 == 1.0 \
                and w3 == 1.0 and prev == prev:
            b1 = min(i + B, n)
            m = b1 - i
            cc = close[i:b1]
            oo = out[i:b1]
            s0 = (e1, e2, e3, prev)
            hit = False
            for t in range(m):           # speculative: no select on the chains
                c = cc[t]
                h1 = ewm_hit(e1, c)
                e1 = ewm_plain(e1, c, f, a)
                h2 = ewm_hit(e2, e1)
                e2 = ewm_plain(e2, e1, f, a)
                h3 = ewm_hit(e3, e2)
                e3 = ewm_plain(e3, e2, f, a)
                hit = hit | h1 | h2 | h3
                oo[t] = (e3 - prev) / prev * 100.0
                prev = e3
            if e1 - e1 == 0.0 and e2 - e2 == 0.0 and e3 - e3 == 0.0:   # all rows finite
                if hit:                  # an input equalled its EMA: replay with the skip
                    e1, e2, e3, prev = s0
                    for t in range(m):
                        c = cc[t]
                        e1 = ewm_exact(e1, c, f, a)
                        e2 = ewm_exact(e2, e1, f, a)
                        e3 = ewm_exact(e3, e2, f, a)
                        oo[t] = (e3 - prev) / prev * 100.0
                        prev = e3
                n1 += m
                n2 += m
                n3 += m
                i = b1
                continue
            e1, e2, e3, prev = s0        # a missing close: the general row
            general_to = b1
        e1, w1, n1 = ewm_step(e1, w1, n1, close[i], a)
        v = e1 if n1 >= window else NAN
        e2, w2, n2 = ewm_step(e2, w2, n2, v, a)
        v = e2 if n2 >= window else NAN
        e3, w3, n3 = ewm_step(e3, w3, n3, v, a)
        v = e3 if n3 >= window else NAN
        out[i] = (v - prev) / prev * 100.0
        prev = v
        i += 1
    st[0] = e1
    st[1] = w1
    st[2] = min(n1, window)
    st[3] = e2
    st[4] = w2
    st[5] = min(n2, window)
    st[6] = e3
    st[7] = w3
    st[8] = min(n3, window)
    st[9] = prev


@jit
def trix(close, window, out):
    """`ta.trend.TRIXIndicator(close, window).trix()`: 100 * one-row change of the triple EMA
    (three pandas EMAs of span `window`, each NaN until `window` observations). Row 0 is NaN
    (ta fills the missing previous value with the whole-series mean, a look-ahead that only
    shows when window == 1). One pass, pandas' rows bit for bit (TRIX is a tiny relative
    change of a value near the price, so a few ulp of the price would exceed 1e-9 of it on a
    near-flat series): once the three EMAs are warm, blocks of EWM_BLOCK rows run the three
    recurrences side by side, speculatively without pandas' equality skip (`ewm_plain`,
    replayed with `ewm_exact` where it applies); a block with a missing close is
    rolled back and replayed with the general row (`ewm_step`, the same bits on finite rows).
    (`_trix_init` + `_trix_rows`: the resumable form for `ops._split_recur`.)"""
    st = np.empty(10)
    lo = _trix_init(close, window, out, st)
    _trix_rows(close, window, out, lo, close.shape[0], st)


@jit
def tsi(close, slow, fast, out):
    """`ta.momentum.TSIIndicator(close, window_slow=slow, window_fast=fast).tsi()`: double
    EMA (spans slow then fast) of the one-row change over that of its absolute value, x100.
    (`_tsi_init` + `_tsi_rows`: the resumable form for `ops._split_recur`.)"""
    st = np.empty(13)
    lo = _tsi_init(close, slow, fast, out, st)
    _tsi_rows(close, slow, fast, out, lo, close.shape[0], st)


@jit
def _tsi_init(close, slow, fast, out, st):
    """The state before row 0 (see `_tsi_rows`); returns the first row to compute (0)."""
    fresh_ewm_states(st, 4)
    st[12] = NAN
    return 0


@jit
def _tsi_rows(close, slow, fast, out, lo, hi, st):
    """Rows lo .. hi-1 of `tsi` from the state st = (s1, w1, n1, s2, w2, n2, b1, v1, m1, b2,
    v2, m2, previous close): the change's two EMAs then its absolute value's, the counts
    capped where the kernel stops looking; left at hi in st."""
    a1 = span_alpha(slow)
    a2 = span_alpha(fast)
    s1 = st[0]
    w1 = st[1]
    n1 = int(st[2])
    s2 = st[3]
    w2 = st[4]
    n2 = int(st[5])
    b1 = st[6]
    v1 = st[7]
    m1 = int(st[8])
    b2 = st[9]
    v2 = st[10]
    m2 = int(st[11])
    prev = st[12]
    for i in range(lo, hi):
        d = close[i] - prev
        prev = close[i]
        s1, w1, n1 = ewm_step(s1, w1, n1, d, a1)
        s2, w2, n2 = ewm_step(s2, w2, n2, s1 if n1 >= slow else NAN, a2)
        b1, v1, m1 = ewm_step(b1, v1, m1, abs(d), a1)
        b2, v2, m2 = ewm_step(b2, v2, m2, b1 if m1 >= slow else NAN, a2)
        num = s2 if n2 >= fast else NAN
        den = b2 if m2 >= fast else NAN
        out[i] = num / den * 100.0
    st[0] = s1
    st[1] = w1
    st[2] = min(n1, slow)
    st[3] = s2
    st[4] = w2
    st[5] = min(n2, fast)
    st[6] = b1
    st[7] = v1
    st[8] = min(m1, slow)
    st[9] = b2
    st[10] = v2
    st[11] = min(m2, fast)
    st[12] = prev


@jit
def roc(close, window, out):
    """`ta.momentum.ROCIndicator(close, window).roc()`: 100 * (c - c[t-window]) / c[t-window].
    (Range-indexed slices: no negative-index checks, so the division runs in SIMD lanes.)"""
    n = close.shape[0]
    w = min(window, n)
    out[:w] = NAN
    m = n - w
    cur = close[w:]
    prv = close[:m]
    oo = out[w:]
    for t in range(m):
        p = prv[t]
        oo[t] = ((cur[t] - p) / p) * 100.0


@jit
def stoch_rsi(close, window, smooth1, smooth2, out):
    """`ta.momentum.StochRSIIndicator(close, window, smooth1, smooth2)`: rows stochrsi(),
    stochrsi_k(), stochrsi_d() (ratio in [0, 1], as ta)."""
    n = close.shape[0]
    r = np.empty(n)
    rsi(close, window, r)
    s = out[0]
    f = finite_from(r)                   # rsi: a NaN warm-up, then finite (the usual case)
    if f >= 0:
        s[:f] = NAN
        x = r[f:]
        m = n - f
        sh, sl, hh, ll = hilo_scratch(window)
        for b0 in range(0, m, window):
            hilo_block(x, x, b0, window, sh, sl, hh, ll)
            for t in range(min(window, m - b0)):
                lo = ll[t]
                s[f + b0 + t] = (x[b0 + t] - lo) / (hh[t] - lo)
    else:
        hh = out[1]
        ll = out[2]
        rolling_max(r, window, window, hh)
        rolling_min(r, window, window, ll)
        for i in range(n):
            s[i] = (r[i] - ll[i]) / (hh[i] - ll[i])
    rolling_mean(s, smooth1, smooth1, out[1])
    rolling_mean(out[1], smooth2, smooth2, out[2])


@register_warmup
def _warm():
    h = np.array([2.0, 3.0, 4.0, 3.5, 5.0, 4.0, 6.0, 5.5])
    c = h - 0.5
    o = np.empty_like(c)
    o3 = (np.empty_like(c), np.empty_like(c), np.empty_like(c))   # as ops passes outputs
    rsi(c, 2, o)
    macd(c, 2, 3, 2, o3)
    trix(c, 2, o)
    tsi(c, 3, 2, o)
    roc(c, 2, o)
    kama(c, 2, 2, 4, o)
    stoch_rsi(c, 2, 2, 2, o3)

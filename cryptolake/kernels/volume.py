"""Volume kernels: vwap, obv, mfi, cmf, force_index, eom. Float64 arrays in, preallocated
outputs written. Imports only numpy, numba and our own kernels."""
from __future__ import annotations

import numpy as np

from ._jit import jit, register_warmup
from ._ewm import ewm_step
from ._sums import np_sum
from .rolling import rolling_mean, rolling_mean_guarded

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


_MFI_B = 512        # rows per block of `mfi`'s passes (their scratch stays in L1/L2)


@jit
def mfi(high, low, close, volume, window, out):
    """`ta.volume.MFIIndicator(high, low, close, volume, window).money_flow_index()`:
    money flow tp * volume signed by the move of tp; 100 - 100 / (1 + sum(+) / |sum(-)|) over
    the window, computed as 100 sum(+) / (sum(+) + |sum(-)|) (the same value within a few
    ulps, one division; 100 when sum(-) is 0, NaN when both are). Kahan running sums of the
    window's positive and negative flows, a sum rebuilt exactly (numpy's pairwise order, as
    ta sums each window) when removing a row cancels most of it, and exactly 0 when no
    nonzero term is left, so zero-volume windows give NaN and tiny flows keep their ratio.
    A NaN/inf flow makes its windows NaN.

    Blocks of 512 rows in three passes: the flows (vectorised, selects instead of branches:
    a random walk's up/down moves mispredict every other row), the running sums (the only
    serial chain, its state carried from block to block), the ratios (vectorised). The
    flows of the window before a block stay in front of its scratch, so the row leaving the
    window and the exact rebuild read contiguous memory. The arithmetic is the row-by-row
    loop's, in the same order."""
    n = close.shape[0]
    w = window
    B = _MFI_B
    fp = np.zeros(w + B)              # flows of rows b0 - w .. b1 - 1 (0 before row 0)
    fq = np.zeros(w + B)
    okf = np.empty(B, np.bool_)
    tpb = np.empty(B + 1)
    sp = np.empty(B)
    sq = np.empty(B)
    valid = np.empty(B, np.bool_)
    ps = 0.0
    pc = 0.0
    pnz = 0
    ns = 0.0
    nc = 0.0
    nnz = 0
    bad = -w - 1                      # the last row with a missing flow
    prev = NAN
    for b0 in range(0, n, B):
        b1 = min(b0 + B, n)
        m = b1 - b0
        if b0 > 0:                    # the last w flows move to the front (blocks before
            for j in range(w):        # this one were full)
                fp[j] = fp[B + j]
                fq[j] = fq[B + j]
        hs = high[b0:b1]
        ls = low[b0:b1]
        cs = close[b0:b1]
        vs = volume[b0:b1]
        tpb[0] = prev
        for t in range(m):
            tpb[t + 1] = (hs[t] + ls[t] + cs[t]) / 3.0
        prev = tpb[m]
        gp = fp[w:w + m]
        gq = fq[w:w + m]
        for t in range(m):
            tp = tpb[t + 1]
            pv = tpb[t]
            ud = 1.0 if tp > pv else (-1.0 if tp < pv else 0.0)
            f = tp * vs[t] * ud
            ok = f - f == 0.0
            gp[t] = f if (ok and f >= 0.0) else 0.0
            gq[t] = f if (ok and f < 0.0) else 0.0
            okf[t] = ok
        for t in range(m):
            i = b0 + t
            p = fp[w + t]
            q = fq[w + t]
            op = fp[t]                # row i - w, leaving the window
            oq = fq[t]
            bad = bad if okf[t] else i
            pnz += (1 if p != 0.0 else 0) - (1 if op != 0.0 else 0)
            nnz += (1 if q != 0.0 else 0) - (1 if oq != 0.0 else 0)
            y = (p - op) - pc         # Kahan: add the new row less the old one
            u = ps + y
            pc = (u - ps) - y
            ps = u
            y = (q - oq) - nc
            u = ns + y
            nc = (u - ns) - y
            ns = u
            if pnz > 0 and abs(ps) < 1e-6 * op:
                ps = np_sum(fp, t + 1, w)     # rows i - w + 1 .. i, in order
                pc = 0.0
            if nnz > 0 and abs(ns) < -1e-6 * oq:
                ns = np_sum(fq, t + 1, w)
                nc = 0.0
            ps = ps if pnz > 0 else 0.0
            pc = pc if pnz > 0 else 0.0
            ns = ns if nnz > 0 else 0.0
            nc = nc if nnz > 0 else 0.0
            sp[t] = ps
            sq[t] = ns
            valid[t] = i >= w - 1 and bad <= i - w
        o = out[b0:b1]
        for t in range(m):
            a = abs(sq[t])            # = ta's 100 - 100 / (1 + ps / a) in one division
            r = 100.0 * sp[t] / (sp[t] + a)
            o[t] = r if valid[t] else NAN


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


FLOW_BLOCK = 1 << 16
"""`_flow_over_volume` re-sums both sums at the last row of every block of this many rows, so
its state at a block boundary follows from the window before it (`_flow_over_volume_rows`)."""


@jit
def _flow_over_volume(high, low, close, volume, window, out, kind):
    """Rolling sum of a per-row flow (vwap: tp * volume; cmf: money-flow volume) over the
    rolling sum of volume, in one branch-free pass: two running sums, a count of missing rows
    (a row whose flow or volume is NaN/inf: the window is NaN, as pandas' rolling sum with
    min_periods=window gives) and a count of nonzero volumes (none left: both sums are
    exactly 0, so a window that traded nothing is 0/0 = NaN, as in ta). Both sums are re-summed
    afresh every `FLOW_BLOCK` rows and when the volume sum (or vwap's flow sum) falls below 1e-4
    of its largest value since the last re-sum, so cancellation never costs more than ~1e-12
    relative. Every decision depends on earlier rows only (prefix-stable)."""
    _flow_over_volume_rows(high, low, close, volume, window, out, kind, 0, close.shape[0])


@jit
def _flow_over_volume_rows(high, low, close, volume, window, out, kind, lo, hi):
    """Rows lo .. hi-1 of `_flow_over_volume`, lo a multiple of `FLOW_BLOCK`: the state at lo
    is rebuilt from the window before it exactly as the whole pass leaves it (its re-sum at
    row lo - 1: the ring in slot order, then the no-volume rule), so any split on block
    boundaries gives the whole pass's bits."""
    w = window
    rp = np.zeros(w)                # the window's flows and volumes (0 for a missing row)
    rv = np.zeros(w)
    sp = 0.0
    sv = 0.0
    bp = 0.0
    bv = 0.0
    bad = -w - 1                    # the last missing row
    live = -w - 1                   # the last row with a nonzero volume
    if lo > 0:
        for r in range(max(0, lo - w), lo):
            p = _flow(kind, high, low, close, volume, r)
            v = volume[r]
            ok = (p - p == 0.0) and (v - v == 0.0)
            bad = bad if ok else r
            p = p if ok else 0.0
            v = v if ok else 0.0
            live = r if v != 0.0 else live
            rp[r % w] = p
            rv[r % w] = v
        for j in range(w):
            sp += rp[j]
            sv += rv[j]
        if live <= lo - 1 - w:
            sp = 0.0
            sv = 0.0
        bp = abs(sp)
        bv = sv
    k = lo % w                      # ring slot of row i - w
    for i in range(lo, hi):
        p = _flow(kind, high, low, close, volume, i)
        v = volume[i]
        ok = (p - p == 0.0) and (v - v == 0.0)
        p = p if ok else 0.0
        v = v if ok else 0.0
        bad = bad if ok else i
        live = i if v != 0.0 else live
        sp += p - rp[k]
        sv += v - rv[k]
        rp[k] = p
        rv[k] = v
        k = 0 if k + 1 == w else k + 1
        if live <= i - w:           # no volume in the window: both sums are exactly 0
            sp = 0.0
            sv = 0.0
        a = abs(sp)
        bp = a if a > bp else bp
        bv = sv if sv > bv else bv
        if sv < bv * 1e-4 or (kind == _VWAP and a < bp * 1e-4) or (i & (FLOW_BLOCK - 1)) == FLOW_BLOCK - 1:
            sp = 0.0
            sv = 0.0
            for j in range(w):       # the ring holds exactly the window (zeros before row 0)
                sp += rp[j]
                sv += rv[j]
            if live <= i - w:
                sp = 0.0
                sv = 0.0
            bp = abs(sp)
            bv = sv
        r = sp / sv
        out[i] = r if (bad <= i - w and i >= w - 1) else NAN


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
    rolling_mean_guarded(e, window, window, out)   # signed, wide range: cancellation


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

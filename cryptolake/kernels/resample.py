"""Time-bin kernels: the bins of pandas' `resample(rule, offset=...)` and per-bin reductions.

Times are int64 ticks of one unit (nanoseconds by convention; ops passes the index's own unit
so that no conversion copy is made) and sorted within each segment (one segment per symbol).
Bins are found in two steps that together read every column at most once:

1. `bin_edges` gallops over the times (two reads per regular bin) and writes, per non-empty
   bin, its first row and its label, plus the first bin of each segment; `starts[nb]` is
   `len(t)`, so bin `b` is rows `starts[b]:starts[b + 1]`. Either called once to count the
   bins (`write=False`) and again to fill, or (as ops does) once into outputs sized by a bound
   on the bin count. `bin_edges_at` reads a MultiIndex's times through its codes.
2. One reduction per column (`bin_first`, `bin_last`, `bin_max`, `bin_min`,
   `bin_sum_pairwise`, `bin_sum`, `bin_sum_int`) reads that column once and writes one value
   per bin into a preallocated output; first/last read only a value or two per bin. The
   reductions are independent, so ops runs them on two threads (they release the GIL).

The reductions skip NaN like pandas' groupby reductions do. Sums follow pandas bit for bit:
on sorted groups without NaN pandas sums with `np.add.reduceat` (numpy's pairwise sum:
`bin_sum_pairwise`), otherwise with Kahan-compensated `group_sum` (`bin_sum`).
"""
from __future__ import annotations

import numpy as np

from ._jit import jit, register_warmup


@jit(inline="always")
def _at(t, codes, i):
    """The time of row `i`: `t[i]`, or `t[codes[i]]` when `t` is a MultiIndex level's ticks
    and `codes` its codes (the branch is resolved at compile time)."""
    if codes is None:
        return t[i]
    return t[codes[i]]


@jit
def _first_at_least(t, codes, lo, hi, value):
    """`lo + np.searchsorted(t[lo:hi], value)`: the first index in [lo, hi) with t >= value."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if _at(t, codes, mid) >= value:
            hi = mid
        else:
            lo = mid + 1
    return lo


@jit
def bin_edges(t, seg, origin, step, starts, labels, segnb, write):
    """See `bin_edges_at` (times given directly)."""
    return bin_edges_at(t, None, seg, origin, step, starts, labels, segnb, write)


@jit
def bin_edges_at(t, codes, seg, origin, step, starts, labels, segnb, write):
    """Non-empty bins of `pd.Series(t).resample(step, origin=origin, closed='left', label='left')`.

    A row at time `x` in segment `s` falls in the bin labelled
    `x - ((x - origin[s]) mod step)`; pandas' default `origin='start_day'` is midnight of the
    segment's first day plus `offset`. `seg` holds segment boundaries (`seg[0] == 0`,
    `seg[-1] == len(t)`). Returns the number of bins `nb` and sets `segnb[s]` to the first bin
    of segment `s` (`segnb[-1] == nb`); with `write` it also fills `starts[:nb + 1]` (first
    row of each bin, then `len(t)`) and `labels[:nb]`, so a first call can size the outputs.
    The end of a bin is guessed from the previous bin's length and checked with two reads
    (a binary search when the guess fails), so regular bars are not read one by one.
    With `codes` (not None) the time of row `i` is `t[codes[i]]`: a MultiIndex is read
    through its codes, without gathering every row's time first.
    """
    nb = 0
    for s in range(len(seg) - 1):
        segnb[s] = nb
        i = seg[s]
        end = seg[s + 1]
        guess = 1
        hi = _at(t, codes, i) + 1 if i < end else 0   # > the first time: its label is computed, not assumed
        while i < end:
            x = _at(t, codes, i)
            if x >= hi and x - hi < step:
                lab = hi              # the next bin: no division needed
            else:
                lab = x - (x - origin[s]) % step
            hi = lab + step
            if write:
                starts[nb] = i
                labels[nb] = lab
            nb += 1
            j = i + guess
            if j < end and _at(t, codes, j - 1) < hi and _at(t, codes, j) >= hi:
                pass
            elif j >= end and _at(t, codes, end - 1) < hi:
                j = end
            else:
                j = _first_at_least(t, codes, i + 1, end, hi)
            guess = j - i
            i = j
    segnb[len(seg) - 1] = nb
    if write:
        starts[nb] = seg[len(seg) - 1]
    return nb


@jit
def bin_first(x, starts, nb, out):
    """`groupby(...).first()`: the first non-NaN value of each bin (NaN when none)."""
    for b in range(nb):
        out[b] = np.nan
        for i in range(starts[b], starts[b + 1]):
            if x[i] == x[i]:
                out[b] = x[i]
                break


@jit
def bin_last(x, starts, nb, out):
    """`groupby(...).last()`: the last non-NaN value of each bin (NaN when none; ints as is)."""
    for b in range(nb):
        out[b] = x[starts[b + 1] - 1]
        for i in range(starts[b + 1] - 1, starts[b] - 1, -1):
            if x[i] == x[i]:
                out[b] = x[i]
                break


@jit
def _all_nan_or(x, i0, i1, value):
    """`value` when `x[i0:i1]` has a non-NaN value, else NaN (for an extreme of +-inf)."""
    for i in range(i0, i1):
        if x[i] == x[i]:
            return value
    return np.nan


@jit(inline="always")
def _extreme_lanes(x, i0, i1, acc, sign):
    """max (sign 1) or -min (sign -1) of `x[i0:i1]` skipping NaN (-inf when none), on 8
    lanes over a slice: the loop body is 8 independent compare-selects that the compiler
    packs into vector instructions (a single running extreme would be one serial chain)."""
    for k in range(8):
        acc[k] = -np.inf
    nfull = (i1 - i0) // 8
    blk = x[i0:i0 + nfull * 8]
    for j in range(nfull):
        for k in range(8):
            v = sign * blk[8 * j + k]
            acc[k] = v if v > acc[k] else acc[k]
    m = -np.inf
    for i in range(i0 + nfull * 8, i1):
        v = sign * x[i]
        m = v if v > m else m
    for k in range(8):
        m = acc[k] if acc[k] > m else m
    return m


@jit
def bin_max(x, starts, nb, out):
    """`groupby(...).max()`: NaN-skipping maximum of each bin (NaN when all NaN).

    Branch-free select chains keep the loop fast: NaN never compares greater, so it is
    skipped; a result of -inf is checked for "all NaN" afterwards. Short bins use four
    scalar chains, long ones eight vector lanes (`_extreme_lanes`)."""
    acc = np.empty(8)
    for b in range(nb):
        i = starts[b]
        i1 = starts[b + 1]
        if i1 - i >= 32:
            m = _extreme_lanes(x, i, i1, acc, 1.0)
            out[b] = m if m != -np.inf else _all_nan_or(x, starts[b], i1, m)
            continue
        m0 = m1 = m2 = m3 = -np.inf
        u = np.uint64(i)   # unsigned indices: no negative-index fix-up per load
        u1 = np.uint64(i1)
        while u + np.uint64(3) < u1:
            v0, v1 = x[u], x[u + np.uint64(1)]
            v2, v3 = x[u + np.uint64(2)], x[u + np.uint64(3)]
            m0 = v0 if v0 > m0 else m0
            m1 = v1 if v1 > m1 else m1
            m2 = v2 if v2 > m2 else m2
            m3 = v3 if v3 > m3 else m3
            u += np.uint64(4)
        while u < u1:
            m0 = x[u] if x[u] > m0 else m0
            u += np.uint64(1)
        m0 = m1 if m1 > m0 else m0
        m2 = m3 if m3 > m2 else m2
        m = m2 if m2 > m0 else m0
        out[b] = m if m != -np.inf else _all_nan_or(x, starts[b], i1, m)


@jit
def bin_min(x, starts, nb, out):
    """`groupby(...).min()`: NaN-skipping minimum of each bin (NaN when all NaN); see
    `bin_max` (long bins: the maximum of the negated values, negated back)."""
    acc = np.empty(8)
    for b in range(nb):
        i = starts[b]
        i1 = starts[b + 1]
        if i1 - i >= 32:
            m = -_extreme_lanes(x, i, i1, acc, -1.0)
            out[b] = m if m != np.inf else _all_nan_or(x, starts[b], i1, m)
            continue
        m0 = m1 = m2 = m3 = np.inf
        u = np.uint64(i)   # unsigned indices: no negative-index fix-up per load
        u1 = np.uint64(i1)
        while u + np.uint64(3) < u1:
            v0, v1 = x[u], x[u + np.uint64(1)]
            v2, v3 = x[u + np.uint64(2)], x[u + np.uint64(3)]
            m0 = v0 if v0 < m0 else m0
            m1 = v1 if v1 < m1 else m1
            m2 = v2 if v2 < m2 else m2
            m3 = v3 if v3 < m3 else m3
            u += np.uint64(4)
        while u < u1:
            m0 = x[u] if x[u] < m0 else m0
            u += np.uint64(1)
        m0 = m1 if m1 < m0 else m0
        m2 = m3 if m3 < m2 else m2
        m = m2 if m2 < m0 else m0
        out[b] = m if m != np.inf else _all_nan_or(x, starts[b], i1, m)


@jit
def bin_sum(x, starts, nb, out):
    """`groupby(...).sum()` (min_count=0): NaN-skipping Kahan sum, the algorithm of pandas'
    `group_sum`, so float results are identical; exact for integer arrays."""
    for b in range(nb):
        out[b] = 0
        acc = out[b]
        comp = out[b]
        for i in range(starts[b], starts[b + 1]):
            v = x[i]
            if v == v:
                y = v - comp
                tt = acc + y
                comp = tt - acc - y
                if comp != comp:  # an infinite value: keep inf, not NaN (pandas GH#53606)
                    comp = 0
                acc = tt
        out[b] = acc


@jit
def bin_sum_int(x, starts, nb, out):
    """`groupby(...).sum()` of an integer column (exact, wraps like numpy on overflow)."""
    for b in range(nb):
        acc = 0
        for i in range(np.uint64(starts[b]), np.uint64(starts[b + 1])):  # unsigned: vectorises
            acc += x[i]
        out[b] = acc


@jit(inline="always")
def _pairwise_block(x, i0, n):
    """numpy's `pairwise_sum` of `x[i0:i0 + n]` for n <= 128: a plain loop below 8, else
    8 accumulators combined as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the tail.
    Unsigned indices spare numba's negative-index fix-up on each of the 8 loads."""
    if n < 8:
        res = -0.0
        for i in range(np.uint64(i0), np.uint64(i0 + n)):
            res += x[i]
        return res
    u = np.uint64(i0)
    r0, r1, r2, r3 = x[u], x[u + np.uint64(1)], x[u + np.uint64(2)], x[u + np.uint64(3)]
    r4, r5 = x[u + np.uint64(4)], x[u + np.uint64(5)]
    r6, r7 = x[u + np.uint64(6)], x[u + np.uint64(7)]
    m = n - n % 8
    for jj in range(8, m, 8):
        j = u + np.uint64(jj)
        r0 += x[j]
        r1 += x[j + np.uint64(1)]
        r2 += x[j + np.uint64(2)]
        r3 += x[j + np.uint64(3)]
        r4 += x[j + np.uint64(4)]
        r5 += x[j + np.uint64(5)]
        r6 += x[j + np.uint64(6)]
        r7 += x[j + np.uint64(7)]
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for j in range(np.uint64(i0 + m), np.uint64(i0 + n)):
        res += x[j]
    return res


@jit
def _pairwise(x, i0, n):
    """numpy's `pairwise_sum` of `x[i0:i0 + n]`: blocks of <= 128, halving above."""
    if n <= 128:
        return _pairwise_block(x, i0, n)
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(x, i0, n2) + _pairwise(x, i0 + n2, n - n2)


@jit
def bin_sum_pairwise(x, starts, nb, out):
    """`np.add.reduceat(x, starts[:-1])`: the first value plus numpy's pairwise sum of the
    rest; what pandas' groupby `sum` does on sorted groups when the column has no NaN. NaN
    propagates (the caller then switches to `bin_sum`)."""
    for b in range(nb):
        i0 = starts[b]
        n = starts[b + 1] - i0 - 1
        if n <= 128:
            out[b] = x[i0] + _pairwise_block(x, i0 + 1, n)
        else:
            out[b] = x[i0] + _pairwise(x, i0 + 1, n)


@jit
def gather(values, codes, out):
    """`out = values.take(codes)` (a MultiIndex level's ticks by its codes, any int width)."""
    for i in range(len(codes)):
        out[i] = values[codes[i]]


@jit
def grid_codes(ticks, lo, step, codes, used):
    """`codes = (ticks - lo) // step` and `used[codes] = True` (the factorize of times that lie
    on one grid, as `pd.factorize` would give after sorting); False as soon as a tick is off
    the grid or past `used`."""
    for i in range(len(ticks)):
        d = ticks[i] - lo
        k = d // step
        if k * step != d or k >= len(used):
            return False
        codes[i] = k
        used[k] = True
    return True


@jit
def grid_rank(codes, used, lo, step, rank, uniq):
    """After `grid_codes`: grid offsets -> ranks among the used grid points, in place
    (`rank` is scratch of `len(used)`), and `uniq[:nu]` the used points as ticks; returns nu."""
    nu = 0
    for k in range(len(used)):
        rank[k] = nu
        if used[k]:
            uniq[nu] = lo + k * step
            nu += 1
    for i in range(len(codes)):
        codes[i] = rank[codes[i]]
    return nu


@jit
def min_step(t, seg):
    """The smallest positive diff between consecutive ticks of a segment (0 when there is
    none): `np.diff(t)` without the diffs across segments, `d[d > 0].min()`. One branch-free
    pass over slices, so that the loop vectorises."""
    best = np.int64(0)
    for s in range(len(seg) - 1):
        if seg[s + 1] - seg[s] < 2:
            continue
        a = t[seg[s] + 1:seg[s + 1]]
        b = t[seg[s]:seg[s + 1] - 1]
        m = np.int64(9223372036854775807)
        for i in range(len(a)):
            d = a[i] - b[i]
            m = d if (d > 0) & (d < m) else m
        if m != 9223372036854775807 and (best == 0 or m < best):
            best = m
    return best


@jit
def all_multiples(t, seg, step):
    """True when every positive diff between consecutive ticks of a segment is a multiple of
    `step` (> 0): `(d[d > 0] % step == 0).all()`."""
    for s in range(len(seg) - 1):
        for i in range(seg[s] + 1, seg[s + 1]):
            d = t[i] - t[i - 1]
            if d > 0 and d % step != 0:
                return False
    return True


@register_warmup
def _warm() -> None:
    t = np.arange(6, dtype=np.int64)
    seg = np.array([0, 3, 6], dtype=np.int64)
    origin = np.zeros(2, dtype=np.int64)
    starts = np.empty(7, np.int64)
    labels = np.empty(6, np.int64)
    segnb = np.empty(3, np.int64)
    nb = bin_edges(t, seg, origin, 2, starts, labels, segnb, True)
    for c in (np.int8, np.int16, np.int32, np.int64):
        bin_edges_at(t, np.arange(6).astype(c), seg, origin, 2, starts, labels, segnb, True)
    x = np.ones(6)
    out = np.empty(nb)
    for k in (bin_first, bin_last, bin_max, bin_min, bin_sum, bin_sum_pairwise):
        k(x, starts, nb, out)
    bin_sum_int(t, starts, nb, np.empty(nb, np.int64))
    used = np.zeros(6, np.bool_)
    pos = np.empty(nb, np.int64)
    grid_codes(labels[:nb], 0, 2, pos, used)
    grid_rank(pos, used, 0, 2, np.empty(6, np.int64), np.empty(6, np.int64))
    bin_last(t, starts, nb, np.empty(nb, np.int64))
    for c in (np.int8, np.int16, np.int32, np.int64):
        gather(t, np.zeros(2, c), np.empty(2, np.int64))
    all_multiples(t, seg, min_step(t, seg))

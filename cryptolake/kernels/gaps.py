"""Gap kernels on a time grid: the bar size, runs of missing bars (`window_runs`, the one run
finder behind `cryptolake.quality`), and filling them.

Times are int64 ticks of one unit, strictly increasing within each segment; `seg` holds
segment boundaries (`seg[0] == 0`, `seg[-1] == len(t)`), one segment per symbol. A bar is
missing when the grid `t[i-1] + k * step` has a point strictly between two present bars.
"""
from __future__ import annotations

import numpy as np

from ._jit import jit, register_warmup


@jit
def first_unsorted(t, seg, strict):
    """First row whose time is below (strict: not above) the previous row's in its segment,
    or -1: `Index.is_monotonic_increasing` (and `.is_unique` when strict) per segment, with
    no hash table. A branch-free count runs first (it vectorises); the row is searched only
    when the count is not zero."""
    lim = 1 if strict else 0
    for s in range(len(seg) - 1):
        bad = 0
        if seg[s + 1] - seg[s] > 1:
            a = t[seg[s] + 1:seg[s + 1]]   # diffs of two slices: no t[i - 1] index fix-up
            b = t[seg[s]:seg[s + 1] - 1]
            for i in range(len(a)):
                bad += np.int64(np.int64(a[i]) - np.int64(b[i]) < lim)
        if bad:
            for i in range(seg[s] + 1, seg[s + 1]):
                if t[i] - t[i - 1] < lim:
                    return i
    return -1


@jit
def majority_step(t, seg):
    """Boyer-Moore majority vote over the positive diffs inside segments, then its count.

    Returns `(candidate, count, total)`; the candidate is the most common diff
    (`pd.Series(t).diff().mode()`) whenever `2 * count > total`, otherwise the caller must
    fall back to a full mode. `sample_step` over every diff, then `count_step`.
    """
    cand = sample_step(t, seg, 1)
    count, total = count_step(t, seg, cand)
    return cand, (count if cand > 0 else 0), total


@jit
def sample_step(t, seg, stride):
    """Boyer-Moore majority vote over every `stride`-th positive diff inside segments: a cheap
    candidate for the bar size, to be confirmed exactly by `count_step`."""
    cand = 0
    votes = 0
    for s in range(len(seg) - 1):
        for i in range(seg[s] + 1, seg[s + 1], stride):
            d = t[i] - t[i - 1]
            if d <= 0:
                continue
            if votes == 0:
                cand = d
                votes = 1
            elif d == cand:
                votes += 1
            else:
                votes -= 1
    return cand


@jit
def count_step(t, seg, cand):
    """`(count, total)`: how many diffs inside segments equal `cand` (> 0) and how many are
    positive. One branch-free pass over `t`; the diffs are taken between two slices so that
    the loop vectorises (indexing `t[i - 1]` would not)."""
    count = 0
    total = 0
    for s in range(len(seg) - 1):
        if seg[s + 1] - seg[s] < 2:
            continue
        a = t[seg[s] + 1:seg[s + 1]]
        b = t[seg[s]:seg[s + 1] - 1]
        for i in range(len(a)):
            d = a[i] - b[i]
            total += np.int64(d > 0)
            count += np.int64(d == cand)
    return count, total


@jit
def window_runs(t, seg, step, origin, lo, hi, auto, start, end, missing, gseg, off):
    """Runs of absent grid points `origin + k * step` inside each segment's window.

    `t` sorted within segments; the window of segment s is [lo[s], hi[s]] (grid points), or
    with `auto` its own first to last on-grid row. Rows off the grid are skipped and counted
    into `off[s]`; they never start or end a run. Writes one row per run (first and last
    absent grid point, how many, segment) and returns how many. Outputs need room for
    `len(t) + len(seg)` runs. The common step between neighbours costs one compare.
    """
    k = 0
    for s in range(len(seg) - 1):
        a = seg[s]
        b = seg[s + 1]
        if auto:
            first = -1
            for i in range(a, b):
                if (t[i] - origin) % step == 0:
                    first = i
                    break
            if first < 0:
                off[s] += b - a
                continue
            w_lo = t[first]
            w_hi = w_lo
            for i in range(b - 1, first - 1, -1):
                if (t[i] - origin) % step == 0:
                    w_hi = t[i]
                    break
        else:
            w_lo = lo[s]
            w_hi = hi[s]
        prev = w_lo - step          # the last grid point known present (or before the window)
        for i in range(a, b):
            x = t[i]
            d = x - prev
            if d != step:
                if (x - origin) % step != 0:
                    off[s] += 1
                    continue
                if x < w_lo or x > w_hi:
                    continue
                if d > step:
                    start[k] = prev + step
                    end[k] = x - step
                    missing[k] = d // step - 1
                    gseg[k] = s
                    k += 1
            prev = x
        if w_hi - prev >= step:
            start[k] = prev + step
            end[k] = w_hi
            missing[k] = (w_hi - prev) // step
            gseg[k] = s
            k += 1
    return k


@jit
def grid_size(t, seg, step):
    """Rows after filling: present bars plus every missing grid point (see `gap_runs`)."""
    n = len(t)
    for s in range(len(seg) - 1):
        for i in range(seg[s] + 1, seg[s + 1]):
            d = t[i] - t[i - 1]
            if d > step:
                n += (d - 1) // step
    return n


@jit
def fill_grid(t, seg, step, out_t, src, filled):
    """The full grid `df.asfreq(step)` per segment, with `src` the row each grid point takes
    its values from (itself, or the last present bar: `ffill`) and `filled` the inserted rows.

    Outputs have length `grid_size(t, seg, step)`; returns that length.
    """
    k = 0
    for s in range(len(seg) - 1):
        for i in range(seg[s], seg[s + 1]):
            if i > seg[s]:
                x = t[i - 1] + step
                while x < t[i]:
                    out_t[k] = x
                    src[k] = i - 1
                    filled[k] = True
                    x += step
                    k += 1
            out_t[k] = t[i]
            src[k] = i
            filled[k] = False
            k += 1
    return k


@jit
def take_or_const(x, src, filled, const, out):
    """`x.take(src)` with `const` on filled rows (volumes and trades: 0)."""
    for i in range(len(src)):
        out[i] = const if filled[i] else x[src[i]]


@jit
def take_or_other(x, other, src, filled, out):
    """`x.take(src)` with `other.take(src)` on filled rows (open/high/low: the carried close)."""
    for i in range(len(src)):
        out[i] = other[src[i]] if filled[i] else x[src[i]]


@jit
def take_shifted(x, t, out_t, src, out):
    """`x.take(src)` moved by as much as the row's time moved (close_time of an inserted bar)."""
    for i in range(len(src)):
        j = src[i]
        out[i] = x[j] + (out_t[i] - t[j])


@register_warmup
def _warm() -> None:
    t = np.array([0, 1, 4, 0, 2], dtype=np.int64)
    seg = np.array([0, 3, 5], dtype=np.int64)
    majority_step(t, seg)
    count_step(t, seg, sample_step(t, seg, 2))
    first_unsorted(t, seg, True)
    for c in (np.int8, np.int16, np.int32):
        first_unsorted(t.astype(c), seg, False)
    w = np.zeros(2, np.int64)
    for auto in (True, False):
        window_runs(t, seg, 1, 0, w, w + 2, auto, np.empty(8, np.int64), np.empty(8, np.int64),
                    np.empty(8, np.int64), np.empty(8, np.int64), np.zeros(2, np.int64))
    m = grid_size(t, seg, 1)
    out_t = np.empty(m, np.int64)
    src = np.empty(m, np.int64)
    filled = np.empty(m, np.bool_)
    fill_grid(t, seg, 1, out_t, src, filled)
    x = np.ones(5)
    out = np.empty(m)
    take_or_const(x, src, filled, 0.0, out)
    take_or_const(t, src, filled, 0, np.empty(m, np.int64))
    take_or_other(x, x, src, filled, out)
    take_shifted(t, t, out_t, src, np.empty(m, np.int64))

"""The one home of summation helpers: Kahan-compensated adds, numpy's pairwise summation
order (bit for bit), and plain sums of the finite values of a slice. Imports only numpy,
numba and `_jit`."""
from __future__ import annotations

import numpy as np

from ._jit import jit


@jit(inline="always")
def kahan_add(total, comp, x):
    """total + x with Kahan compensation; returns the new (total, comp), both starting at 0."""
    y = x - comp
    t = total + y
    return t, (t - total) - y


@jit(inline="always")
def finite_sum(x, a, b):
    """(sum, count) of the finite values of x[a:b], in order."""
    tot = 0.0
    cnt = 0
    for j in range(a, b):
        v = x[j]
        if v - v == 0.0:
            tot += v
            cnt += 1
    return tot, cnt


@jit
def all_finite(x):
    """True when x holds no NaN or inf (a vectorised pass)."""
    ok = True
    for i in range(x.shape[0]):
        ok &= x[i] - x[i] == 0.0
    return ok


@jit(inline="always")
def np_block(a, lo, n):
    """numpy's pairwise-sum leaf (n <= 128): eight accumulators, combined as numpy does."""
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
        return np_block(a, lo, n)
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
        r = np_block(a, los[sp], m)
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

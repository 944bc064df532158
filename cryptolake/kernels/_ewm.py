"""The one home of exponential-weighting arithmetic: pandas' alphas, pandas' adjust=False
update (general row, and the branch-free steady-state row), and the four-rows-at-once
recurrence. Imports only numpy, numba and `_jit`.

pandas' `ewm(adjust=False)` keeps (weighted, old_wt, nobs). Once a series is past its first
observation and its last row was observed, old_wt is 1 and, for every alpha whose weights
(1 - alpha) + alpha sum to exactly 1 (every span/alpha the indicators use; `exact_ok` checks),
an observed finite row is `weighted = (1-alpha)*weighted + alpha*x`, skipped when x equals
weighted. `ewm_exact` is that row, without branches on the dependency chain: the same bits as
`ewm_step`, at one multiply-add of latency per row.
"""
from __future__ import annotations

import numpy as np

from ._jit import jit

NAN = np.nan


# ---------------------------------------------------------------- smoothing constants
def alpha_from_span(span: float) -> float:
    """The alpha pandas uses for `ewm(span=span)` (via its centre of mass, bit for bit)."""
    com = (span - 1) / 2.0
    return 1.0 / (1.0 + com)


def alpha_from_alpha(alpha: float) -> float:
    """The alpha pandas uses for `ewm(alpha=alpha)` (it round-trips through the centre of mass)."""
    com = (1.0 - alpha) / alpha
    return 1.0 / (1.0 + com)


@jit(inline="always")
def span_alpha(span):
    """`alpha_from_span` inside kernels."""
    return 1.0 / (1.0 + (span - 1) / 2.0)


@jit(inline="always")
def alpha_alpha(a):
    """`alpha_from_alpha` inside kernels."""
    return 1.0 / (1.0 + (1.0 - a) / a)


@jit(inline="always")
def exact_ok(alpha):
    """True when pandas' steady-state row needs no division ((1 - alpha) + alpha == 1), so
    `ewm_exact` reproduces it."""
    return (1.0 - alpha) + alpha == 1.0


# ---------------------------------------------------------------- one row
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
def fresh_ewm_states(st, k):
    """k untouched `ewm_step` states (NaN, 1.0, 0) in st[0 .. 3k-1]: the start of the chained
    EMAs' resumable forms (macd, trix, tsi)."""
    for j in range(k):
        st[3 * j] = NAN
        st[3 * j + 1] = 1.0
        st[3 * j + 2] = 0.0


@jit(inline="always")
def ewm_exact(y, x, f, a):
    """pandas' steady-state row for a finite x (f = 1 - a, weights summing to 1): the same
    bits as `ewm_step` with old_wt 1 and y not NaN; the equality test is a select, off the
    multiply-add chain."""
    z = f * y + a * x
    return y if x == y else z


# ---------------------------------------------------------------- four rows at once
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


# ---------------------------------------------------------------- speculative steady state
@jit(inline="always")
def ewm_plain(y, x, f, a):
    """pandas' steady-state row without its equality skip: the same bits as `ewm_exact`
    whenever x != y. Kernels run a block of rows with it (one multiply-add of latency, no
    select on the chain) while recording `x == y` off the chain (`ewm_hit`); a block where
    that ever held is replayed with `ewm_exact`."""
    return f * y + a * x


@jit(inline="always")
def ewm_hit(y, x):
    """True where `ewm_exact` would keep y (x == y): the row `ewm_plain` does not replay."""
    return x == y

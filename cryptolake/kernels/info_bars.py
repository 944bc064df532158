"""Trades -> information-driven bars (López de Prado): a bar closes on the trade at which
the running count of trades (`tick`), base volume (`volume`) or quote turnover (`dollar`)
since the bar opened reaches `size`; the crossing trade belongs to the closing bar and the
count restarts at zero (the excess is not carried, as in mlfinlab).

The state of the unfinished bar lives in two small arrays the caller keeps (`fstate` float64
[8], `istate` int64 [4]), so that feeding the trades day by day gives exactly the bars of one
pass over all of them.
"""
from __future__ import annotations

import numpy as np

from ._jit import jit, register_warmup

TICK, VOLUME, DOLLAR = 0, 1, 2
# fstate: cum, open, high, low, vol, qvol, tbv, tbqv ; istate: open?, t_open, trades, (unused)
_CUM, _O, _H, _L, _V, _QV, _TBV, _TBQV = range(8)
_OPEN, _TOPEN, _CNT = range(3)


@jit
def threshold_bars(t, price, qty, is_buyer_maker, n, kind, size, fstate, istate,
                   t_open, t_close, o, h, l, c, vol, qvol, cnt, tbv, tbqv):
    """One pass over trades in time order; writes each closed bar (first/last trade time,
    first/max/min/last price, sums of qty and price*qty, trades, taker-buy sums) and returns
    how many. Outputs need room for `len(t)` bars. Sums are plain (bars are short)."""
    k = 0
    for i in range(len(t)):
        p = price[i]
        q = qty[i]
        pq = p * q
        if istate[_OPEN] == 0:
            istate[_OPEN] = 1
            istate[_TOPEN] = t[i]
            istate[_CNT] = 0
            fstate[_CUM] = 0.0
            fstate[_O] = p
            fstate[_H] = p
            fstate[_L] = p
            fstate[_V] = 0.0
            fstate[_QV] = 0.0
            fstate[_TBV] = 0.0
            fstate[_TBQV] = 0.0
        if p > fstate[_H]:
            fstate[_H] = p
        if p < fstate[_L]:
            fstate[_L] = p
        fstate[_V] += q
        fstate[_QV] += pq
        istate[_CNT] += n[i]
        if not is_buyer_maker[i]:
            fstate[_TBV] += q
            fstate[_TBQV] += pq
        if kind == TICK:
            fstate[_CUM] += n[i]
        elif kind == VOLUME:
            fstate[_CUM] += q
        else:
            fstate[_CUM] += pq
        if fstate[_CUM] >= size:
            t_open[k] = istate[_TOPEN]
            t_close[k] = t[i]
            o[k] = fstate[_O]
            h[k] = fstate[_H]
            l[k] = fstate[_L]
            c[k] = p
            vol[k] = fstate[_V]
            qvol[k] = fstate[_QV]
            cnt[k] = istate[_CNT]
            tbv[k] = fstate[_TBV]
            tbqv[k] = fstate[_TBQV]
            k += 1
            istate[_OPEN] = 0
    return k


@register_warmup
def _warm() -> None:
    t = np.arange(4, dtype=np.int64)
    x = np.ones(4)
    f = [np.empty(4) for _ in range(9)]
    threshold_bars(t, x, x, np.zeros(4, np.bool_), np.ones(4, np.int64), DOLLAR, 2.0,
                   np.zeros(8), np.zeros(4, np.int64), np.empty(4, np.int64), np.empty(4, np.int64),
                   f[0], f[1], f[2], f[3], f[4], f[5], np.empty(4, np.int64), f[6], f[7])

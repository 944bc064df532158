"""Trades -> bars: OHLCV, VWAP, trade count and taker-buy volumes from trade prints.

Inputs are the columns of a `trades` or `aggTrades` table as arrays: int64 times (one unit,
sorted within each segment), float64 price and qty, bool `is_buyer_maker` (the taker bought
when it is False), and an int64 `n` trades per row (1 for `trades`; `last_trade_id -
first_trade_id + 1` for `aggTrades`). Bins are those of `kernels.resample.bin_edges`.
"""
from __future__ import annotations

import numpy as np

from ._jit import jit, register_warmup
from ._sums import kahan_add


@jit
def trades_to_bars(t, price, qty, is_buyer_maker, n, starts, nb, o, h, l, c, vol, qvol, cnt,
                   tbv, tbqv, vwap):
    """One pass over the trades of `nb` bins (`starts` from `bin_edges`); per bin equals
    `g = trades.groupby(label)`: `g.price.first/max/min/last`, `g.qty.sum()`,
    `(price * qty).groupby(label).sum()`, `g.n.sum()`, the same two sums over taker buys
    (`~is_buyer_maker`) and `vwap = quote volume / volume`. Sums are Kahan-compensated like
    pandas' `group_sum`.
    """
    for b in range(nb):
        i0, i1 = starts[b], starts[b + 1]
        o[b] = price[i0]
        c[b] = price[i1 - 1]
        hi = price[i0]
        lo = price[i0]
        sv = 0.0
        cv = 0.0
        sq = 0.0
        cq = 0.0
        bv = 0.0
        cbv = 0.0
        bq = 0.0
        cbq = 0.0
        k = 0
        for i in range(i0, i1):
            p = price[i]
            q = qty[i]
            pq = p * q
            hi = max(hi, p)
            lo = min(lo, p)
            k += n[i]
            sv, cv = kahan_add(sv, cv, q)
            sq, cq = kahan_add(sq, cq, pq)
            if not is_buyer_maker[i]:
                bv, cbv = kahan_add(bv, cbv, q)
                bq, cbq = kahan_add(bq, cbq, pq)
        h[b] = hi
        l[b] = lo
        vol[b] = sv
        qvol[b] = sq
        cnt[b] = k
        tbv[b] = bv
        tbqv[b] = bq
        vwap[b] = sq / sv


@register_warmup
def _warm() -> None:
    t = np.arange(4, dtype=np.int64)
    x = np.ones(4)
    starts = np.array([0, 2, 4], dtype=np.int64)
    f = [np.empty(2) for _ in range(9)]
    trades_to_bars(t, x, x, np.zeros(4, np.bool_), np.ones(4, np.int64), starts, 2,
                   f[0], f[1], f[2], f[3], f[4], f[5], np.empty(2, np.int64), f[6], f[7], f[8])

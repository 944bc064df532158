"""Splitters for window kernels that restart on fixed blocks of rows (see `_split`), and the
fuser of sma + bbands (see `_fuse`).

Each kernel here has a row-range entry point (`rolling_mean_rows(x, w, minp, out, lo, hi)`
...) that computes rows lo .. hi-1 from the rows it needs before lo, with lo at one of the
kernel's block boundaries; the whole-series kernel is that call on (0, n). A splitter cuts
the series at block boundaries into a few ranges per core, which the threads take in turn
(on a shared machine one core may be slower: nobody waits on a fixed share), so the result
is the whole call's, bit for bit. Kernels whose fast path holds for finite input only
(rolling max/min blocks) report a NaN/inf; the splitter then calls the whole-series kernel,
which takes its NaN-aware path as it always did.
"""
from __future__ import annotations

from math import gcd
from typing import Callable

import numpy as np

from ..kernels import indicators as K
from ..kernels import ma, oscillators, rolling, volatility, volume
from ._fuse import fuses
from ._split import splits
from ._threads import on_threads, on_worker, workers

# Ranges per thread: enough to even out a core that is busy with something else.
RANGES_PER_PART = 4


def _ranges(n: int, block: int, parts: int) -> list[tuple[int, int]]:
    """About `parts * RANGES_PER_PART` row ranges covering 0 .. n-1, each starting at a
    multiple of `block`."""
    nb = -(-n // block)
    per = -(-nb // max(1, min(nb, parts * RANGES_PER_PART)))     # blocks per range
    step = per * block
    return [(lo, min(lo + step, n)) for lo in range(0, n, step)]


def _on_ranges(fn: Callable[[int, int], object], n: int, block: int, parts: int) -> list:
    """fn(lo, hi) for every range of `_ranges`, the threads taking the next as they come free;
    returns the results in range order."""
    rs = _ranges(n, block, parts)
    res: list = [None] * len(rs)
    it = iter(range(len(rs)))            # next() on it is atomic under the GIL

    def worker():
        for i in it:
            res[i] = fn(*rs[i])

    on_threads([worker] * min(parts, len(rs)))
    return res


# ---------------------------------------------------------------- splitters
@splits(K.rolling_mean)
def _sma(cols, params, outs, parts):
    x, = cols
    w, minp = params
    _on_ranges(lambda a, b: rolling.rolling_mean_rows(x, w, minp, outs[0], a, b),
               len(x), rolling.mean_block(w), parts)


@splits(K.bbands)
def _bbands(cols, params, outs, parts):
    x, = cols
    w, k = params
    _on_ranges(lambda a, b: volatility.bbands_rows(x, w, k, outs, a, b),
               len(x), rolling.std_block(w), parts)


@splits(K.wma)
def _wma(cols, params, outs, parts):
    x, = cols
    w, = params
    _on_ranges(lambda a, b: ma.wma_rows(x, w, outs[0], a, b), len(x), ma.wma_block(w), parts)


def _flow_splitter(kind):
    def split(cols, params, outs, parts):
        h, l, c, v = cols
        w, = params
        _on_ranges(lambda a, b: volume._flow_over_volume_rows(h, l, c, v, w, outs[0], kind, a, b),
                   len(c), volume.FLOW_BLOCK, parts)
    return split


splits(K.vwap)(_flow_splitter(volume._VWAP))
splits(K.cmf)(_flow_splitter(volume._CMF))


def _range_position(cols, w, kind, out, parts) -> bool:
    h, l, c = cols
    ok = _on_ranges(lambda a, b: oscillators.range_position_rows(h, l, c, w, kind, out, a, b),
                    len(c), w, parts)
    return all(ok)


@splits(K.stoch)
def _stoch(cols, params, outs, parts):
    w, s = params
    if not _range_position(cols, w, oscillators._K, outs[0], parts):
        K.stoch(*cols, w, s, outs)            # NaN/inf in high/low: the NaN-aware path
        return
    _on_ranges(lambda a, b: rolling.rolling_mean_rows(outs[0], s, s, outs[1], a, b),
               len(outs[0]), rolling.mean_block(s), parts)


@splits(K.williams_r)
def _williams_r(cols, params, outs, parts):
    w, = params
    if not _range_position(cols, w, oscillators._R, outs[0], parts):
        K.williams_r(*cols, w, outs[0])


@splits(K.donchian)
def _donchian(cols, params, outs, parts):
    h, l = cols
    w, offset = params
    ok = _on_ranges(lambda a, b: volatility.donchian_rows(h, l, w, outs, a, b), len(h), w, parts)
    if not all(ok):
        K.donchian(h, l, w, offset, outs)
    else:
        volatility.shift_down(outs, offset)


@splits(K.aroon)
def _aroon(cols, params, outs, parts):
    h, l = cols
    w, = params
    _on_ranges(lambda a, b: oscillators.aroon_rows(h, l, w, outs, a, b), len(h), w + 1, parts)


@splits(K.ultimate_oscillator)
def _ultimate_oscillator(cols, params, outs, parts):
    h, l, c = cols
    _on_ranges(lambda a, b: oscillators.ultimate_oscillator_rows(h, l, c, *params, outs[0], a, b),
               len(c), oscillators.UO_BLOCK, parts)


@splits(K.cci)
def _cci(cols, params, outs, parts):
    h, l, c = cols
    w, const = params
    n = len(c)
    tp = np.empty(n)
    _on_ranges(lambda a, b: oscillators.typical_price_rows(h, l, c, tp, a, b), n, 1, parts)
    K.rolling_mean_exact(tp, w, w, outs[0])   # pandas' Kahan replay: one pass from row 0
    _on_ranges(lambda a, b: oscillators.cci_rows(tp, w, const, outs[0], a, b), n, 8, parts)


# ---------------------------------------------------------------- fusers
# Rows per step of the fused sma + bbands: both blocks' multiple near this (the step's input
# stays in L2 between the two kernels).
FUSE_STEP_ROWS = 4096


def _fused_step(w: int, bw: int) -> int:
    """A multiple of both kernels' blocks near FUSE_STEP_ROWS (0 when their least common
    multiple is far beyond it: then nothing is gained)."""
    a, b = rolling.mean_block(w), rolling.std_block(bw)
    m = a * b // gcd(a, b)
    if m > 16 * FUSE_STEP_ROWS:
        return 0
    return m * max(1, FUSE_STEP_ROWS // m)


def _same_memory(p: np.ndarray, q: np.ndarray) -> bool:
    """True when p and q are the same array data (views of one column count)."""
    return p is q or (p.shape == q.shape and p.strides == q.strides and p.dtype == q.dtype
                      and p.ctypes.data == q.ctypes.data)


@fuses(K.rolling_mean, K.bbands)
def _sma_bbands(jobs, a, b):
    """sma and bbands on the same close over the same steps of rows (`sma_bbands_rows`),
    bit for bit the separate calls; a long series on all cores, split at step boundaries."""
    sj, bj = jobs
    x = sj.cols[0][a:b]
    w, minp = sj.params
    bw, k = bj.params
    mo = sj.outs[0][a:b]
    mid, up, dn = (o[a:b] for o in bj.outs)
    n = b - a
    step = _fused_step(w, bw)
    if step == 0 or not _same_memory(sj.cols[0], bj.cols[0]):
        K.rolling_mean(x, w, minp, mo)
        K.bbands(bj.cols[0][a:b], bw, k, (mid, up, dn))
        return
    from . import _split
    parts = workers()
    if n >= _split.SPLIT_MIN_ROWS and parts >= 2 and not on_worker():
        _on_ranges(lambda lo, hi: rolling.sma_bbands_rows(x, w, minp, mo, bw, k, mid, up, dn,
                                                          lo, hi, step), n, step, parts)
    else:
        rolling.sma_bbands_rows(x, w, minp, mo, bw, k, mid, up, dn, 0, n, step)

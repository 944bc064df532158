"""Splitters for recurrences: speculate from a guessed state, then verify (see `_split`).

Each recurrence kernel has a resumable form (in its kernel module): `init(*cols, *p, *outs,
st)` writes the rows before its first recurrence row and the state there into the float64
array `st`, returning that row; `rows(*cols, *p, *outs, lo, hi, st)` computes rows lo .. hi-1
from the state in `st` and leaves the state at hi there. The kernel itself is `init` then
one `rows` call, and rows depend only on the state and the inputs, so any cut on the
kernel's row grid (`Recur.step`: four for the four-rows-at-once EMAs) gives the same bits.

`drive` on k cores, rows cut at s_1 < ... < s_{k-1}:

1. Part 0 runs from the true start to s_1. At the same time part j starts at s_j - W from the
   kernel's own start (as if the series began there; W = `Recur.warm` rows, enough for the
   contracting recurrences to forget where they started), writes rows s_j .. s_{j+1}-1 and
   records its state at checkpoints s_j, s_j + C, ...
2. Then, in order, the true state at s_j (from part j-1) is compared bit for bit with part
   j's state there. Equal: part j is right (deterministic from equal states). Else the rows
   are recomputed from the true state, one checkpoint interval at a time, until the state
   equals the recorded one (the paths met) or to s_{j+1} (they never met: a full redo, still
   exact). When part 0 is done, the calling thread takes back what the workers have not
   started: a part no worker picked up, and the checkpoint intervals after the one a worker
   is in (on a busy machine a worker may have got little time); it computes them from the
   true state, so it never waits longer than one interval.

Counters in a state are capped where the kernel stops looking (e.g. `nobs` at min_periods),
so that paths that met compare equal. The results are the kernel's own bits in every case.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..kernels import indicators as K
from ..kernels._jit import register_warmup
from ..kernels import kama as _kama
from ..kernels import ma as _ma
from ..kernels import momentum as _mom
from ..kernels import oscillators as _osc
from ..kernels import volatility as _vol
from ._fuse import fuses
from ._split import splits
from ._threads import pool

# State checkpoints per part after the first (the redo runs at most one interval past the
# row where the paths met).
CHECKPOINTS = 8
# Warm-up rows, in time constants of the slowest recurrence (e^-64: far below one ulp).
TIME_CONSTANTS = 64
# Rows recomputed by the last `drive` call after the guessed parts ran (for tests/benchmarks).
LAST_REDO = [0]
# Rows of the later parts the caller computed itself in that call (taken back from workers).
LAST_TAKEN = [0]


@dataclass(frozen=True)
class Recur:
    """A kernel's resumable form (see the module docstring)."""
    init: Callable
    rows: Callable
    nstate: int
    warm: Callable[[tuple], int]              # rows params -> warm-up rows W
    params: Callable[[tuple], tuple | None] = lambda p: p   # kernel -> rows params (None:
    step: int = 1                                           # run the kernel whole)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.tobytes() == b.tobytes()         # bitwise: NaN equals the same NaN


def drive(spec: Recur, kernel: Callable, cols: list, params: tuple, outs: tuple,
          parts: int, take_back: bool = True) -> None:
    """Compute `kernel(*cols, *params, outs)` on `parts` threads (see the module docstring).
    take_back=False waits for every guessed part instead (tests of the verification)."""
    LAST_REDO[0] = 0
    LAST_TAKEN[0] = 0
    p = spec.params(params)
    if p is None:
        kernel(*cols, *params, outs[0] if len(outs) == 1 else outs)
        return
    n = outs[0].shape[0]
    st = np.empty(spec.nstate)
    lo = spec.init(*cols, *p, *outs, st)
    size = (n - lo) // parts // spec.step * spec.step
    W = min(int(spec.warm(p)), size // 4)
    if parts < 2 or size < 16 * spec.step or W < 1:
        spec.rows(*cols, *p, *outs, lo, n, st)
        return
    # the later parts also run their W warm-up rows: they take W rows fewer
    first_rows = (n - lo + (parts - 1) * W) // parts
    bounds = [lo] + [lo + (first_rows + (j - 1) * (first_rows - W)) // spec.step * spec.step
                     for j in range(1, parts)] + [n]
    C = max(spec.step, (first_rows - W) // CHECKPOINTS // spec.step * spec.step)
    records: list = [None] * parts

    def first():
        spec.rows(*cols, *p, *outs, lo, bounds[1], st)

    claims = [0] * parts      # 1: a worker runs it; -1: the caller took it before; -2: after
    lock = threading.Lock()

    def guessed(j):
        with lock:
            if claims[j]:
                return
            claims[j] = 1
        a, b = bounds[j], bounds[j + 1]
        s = np.empty(spec.nstate)
        w = W
        scratch = [np.empty(w + spec.step) for _ in outs]
        k = spec.init(*[c[a - w:a] for c in cols], *p, *scratch, s)
        if (w - k) % spec.step and w + spec.step <= a:   # end the warm-up on its own grid,
            w += spec.step - (w - k) % spec.step         # as the true path reaches a
            k = spec.init(*[c[a - w:a] for c in cols], *p, *scratch, s)
        spec.rows(*[c[a - w:a] for c in cols], *p, *scratch, k, w, s)
        rec = [(a, s.copy())]
        records[j] = rec
        while a < b and not claims[j] < 0:    # until the caller takes the rest back
            q = min(a + C, b)
            spec.rows(*cols, *p, *outs, a, q, s)
            rec.append((q, s.copy()))
            a = q

    futs = [pool().submit(guessed, j) for j in range(1, parts)]
    try:
        first()
    finally:
        with lock:                # the rest of the later parts is the caller's (on a busy
            for j in range(1, parts):         # machine a worker may not have got far):
                if take_back:                 # a worker stops at its next checkpoint
                    claims[j] = -1 if claims[j] == 0 else -2
        for f in futs:
            if not (take_back and f.cancel()):    # cancelled: it had not left the queue
                f.result()
    true = st                                 # the true state at bounds[1]
    redo = 0
    for j in range(1, parts):
        rec = records[j] if claims[j] != -1 else [(bounds[j], true)]
        s = true.copy()
        k = 0
        while not _same(s, rec[k][1]) and k + 1 < len(rec):
            spec.rows(*cols, *p, *outs, rec[k][0], rec[k + 1][0], s)   # redo one interval
            redo += rec[k + 1][0] - rec[k][0]
            k += 1
        true = rec[-1][1] if _same(s, rec[k][1]) else s
        if rec[-1][0] < bounds[j + 1]:        # the rows the worker left: from the true state
            spec.rows(*cols, *p, *outs, rec[-1][0], bounds[j + 1], true)
            LAST_TAKEN[0] += bounds[j + 1] - rec[-1][0]
    LAST_REDO[0] = redo


# kernel -> its resumable form
SPECS: dict[Callable, Recur] = {}


def _register(kernel: Callable, spec: Recur) -> None:
    SPECS[kernel] = spec

    @splits(kernel)
    def splitter(cols, params, outs, parts):
        drive(spec, kernel, cols, params, outs, parts)


def _tau(rows: float) -> int:
    return int(math.ceil(TIME_CONSTANTS * rows)) + 64


_register(K.ewm_mean, Recur(_ma._ema_init, _ma._ema_rows, 4, step=4,
                            warm=lambda p: _tau(1.0 / p[0])))
_register(K.rsi, Recur(_mom._rsi_init, _mom._rsi_rows, 5, warm=lambda p: _tau(p[0])))
_register(K.macd, Recur(_mom._macd_init, _mom._macd_rows, 9,
                        warm=lambda p: _tau((max(p[0], p[1]) + p[2] + 2) / 2.0)))
_register(K.trix, Recur(_mom._trix_init, _mom._trix_rows, 10,
                        warm=lambda p: _tau(3 * (p[0] + 1) / 2.0)))
_register(K.tsi, Recur(_mom._tsi_init, _mom._tsi_rows, 13,
                       warm=lambda p: _tau((p[0] + p[1] + 2) / 2.0)))
_register(K.kama, Recur(
    _kama._kama_init, _kama._kama_rows, 1, step=4,
    params=lambda p: ((p[0], 2.0 / (p[1] + 1) - 2.0 / (p[2] + 1.0), 2.0 / (p[2] + 1.0))
                      if p[0] <= _kama.KAMA_DIRECT_MAX else None),
    warm=lambda p: _tau(1.0 / (p[2] * p[2]))))   # the slowest smoothing constant, squared
_register(K.atr, Recur(_vol._atr_init, _vol._atr_rows, 1, step=4, warm=lambda p: _tau(p[0])))
_register(K.adx, Recur(_osc._adx_init, _osc._adx_rows, 4, warm=lambda p: _tau(p[0])))
# PSAR forgets its start at its reversals (a few per hundred rows on market data)
_register(K.psar, Recur(_osc._psar_init, _osc._psar_rows, 5, warm=lambda p: 4096))


@fuses(K.atr, K.adx)
def _atr_adx(jobs, a, b):
    """ATR and ADX on the same high/low/close in one pass (`kernels.volatility.atr_adx`),
    bit for bit the separate calls."""
    ja, jx = jobs
    h, l, c = (x[a:b] for x in ja.cols)
    _vol.atr_adx(h, l, c, ja.params[0], jx.params[0], ja.outs[0][a:b],
                 *(o[a:b] for o in jx.outs))


@register_warmup
def _warm():
    """Compile (or load) the Python entry points of every resumable form: `drive` calls
    init and rows from Python, not from inside the kernel."""
    x = np.linspace(1.0, 2.0, 40)
    cols = {1: [x], 3: [x + 0.5, x - 0.5, x]}
    for kernel, spec in SPECS.items():
        ncols = 3 if kernel in (K.atr, K.adx, K.psar) else 1
        params = {K.ewm_mean: (0.5, 2), K.rsi: (2,), K.macd: (2, 3, 2), K.trix: (2,),
                  K.tsi: (3, 2), K.kama: (2, 2, 4), K.atr: (2,), K.adx: (2,),
                  K.psar: (0.02, 0.2)}[kernel]
        nout = 3 if kernel in (K.macd, K.adx, K.psar) else 1
        drive(spec, kernel, cols[ncols], params, tuple(np.empty(40) for _ in range(nout)), 2)

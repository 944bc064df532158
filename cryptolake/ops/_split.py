"""One long series on all cores: the registry of kernels that can split their rows.

`_run` (ops/indicators.py) hands a single series of at least `SPLIT_MIN_ROWS` rows to the
splitter registered for its kernel, if any; the splitter computes the very same output on
the worker threads (`_threads.on_threads`) and returns True. A splitter must give results
identical to the kernel's own call on the whole series (tests compare them bit for bit with
`SPLIT_MIN_ROWS` lowered). Two shapes of kernel register here:

- `_split_blocks`: window kernels that restart their sums on fixed blocks of rows; the
  blocks are independent, so the threads take whole blocks.
- `_split_recur`: recurrences (EMA family, Wilder averages, PSAR): each later part starts
  from a guessed state a little before its first row and is then checked against the true
  state from the part before it, redoing rows only until the two paths meet.
"""
from __future__ import annotations

from typing import Callable

from ._threads import on_worker, workers

# Series shorter than this run on the calling thread: below it the split's fixed costs
# (thread hand-off, warm-up rows) eat what the second core gives. A split costs ~25-50 us
# (measured on the 2-core box); the cheapest split kernel (sma) takes ~1-2 ns a row, so
# 262,144 rows (~0.3-0.6 ms) keeps that under ~10% even when the other core is busy, and
# leaves 100k-row calls (the wrapper-overhead benchmark) on the calling thread.
SPLIT_MIN_ROWS = 1 << 18

# kernel -> splitter(cols, params, outs, parts) (computes outs in place, returns None)
SPLITTERS: dict[Callable, Callable] = {}


def splits(*kernels: Callable) -> Callable:
    """Register the decorated function as the splitter of these kernels."""
    def register(fn: Callable) -> Callable:
        for k in kernels:
            SPLITTERS[k] = fn
        return fn
    return register


def run(kernel: Callable, cols: list, params: tuple, outs: tuple) -> bool:
    """Compute `kernel` on one long series with all cores, if it has a splitter and the
    series is long enough; False (nothing written) otherwise."""
    fn = SPLITTERS.get(kernel)
    n = outs[0].shape[0]
    parts = workers()
    if fn is None or n < SPLIT_MIN_ROWS or parts < 2 or on_worker():
        return False
    fn(cols, params, outs, parts)
    return True


from . import _split_blocks, _split_recur  # noqa: E402,F401  (they register their splitters)

"""Timing helpers shared by the benchmark scripts (run as scripts: this folder is on sys.path)."""
from __future__ import annotations

import statistics
import time


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median seconds of `repeat` calls of `fn`, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out

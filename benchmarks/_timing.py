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


def medians(fns: dict, rounds: int) -> dict:
    """Median seconds per contender: one warm-up call each, then `rounds` interleaved rounds
    (every contender once per round, so load changes hit all of them alike)."""
    for f in fns.values():
        f()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}

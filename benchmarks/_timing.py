"""Timing helpers shared by the benchmark scripts (run as scripts: this folder is on sys.path)."""
from __future__ import annotations

import statistics
import time

PAUSE_S = 0.03   # untimed, after every call of `medians(..., pause=True)` (see there)...
PAUSE_FROM_S = 0.002   # ...when every contender's call takes this long (shorter: start cold)


def timed(fn, repeat: int) -> tuple[float, object]:
    """Median seconds of `repeat` calls of `fn`, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def medians(fns: dict, rounds: int, pause: bool = False) -> dict:
    """Median seconds per contender: one warm-up call each, then `rounds` interleaved rounds
    (every contender once per round, so load changes hit all of them alike). The order turns
    each round, so that no contender always runs right after the same one (a peer whose
    OpenMP threads keep spinning after it returns, or that leaves the allocator with memory
    to fault in again, would otherwise always tax the same next contender). `pause` adds a short
    untimed pause after each call, for sections where a peer leaves threads spinning: numbagg's OpenMP threads spin for milliseconds after it
    returns, and a contender that uses both cores and runs in that window was measured up to
    1.6x slower (sma after numbagg: 6.6 ms; after a 10-50 ms pause: 4.8 ms; after nothing: 4.2 ms).
    No pauses when some contender's warm-up call took under `PAUSE_FROM_S`: after a pause
    every contender starts from cold caches, which taxes a call of a millisecond more than the
    spinning would (on 200k rows ema measured 1.3 ms with pauses after `ta`'s 3 ms calls,
    against 0.21 ms in a plain loop)."""
    first = []
    for f in fns.values():
        t0 = time.perf_counter()
        f()
        first.append(time.perf_counter() - t0)
    pause = pause and min(first) >= PAUSE_FROM_S
    times = {k: [] for k in fns}
    items = list(fns.items())
    for r in range(rounds):
        for k, f in items[r % len(items):] + items[:r % len(items)]:
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
            if pause:
                time.sleep(PAUSE_S)
    return {k: statistics.median(v) for k, v in times.items()}

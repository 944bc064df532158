"""Output arrays of big indicator calls, reused once nothing refers to them.

A 3.16M-row float64 output is 25 MB of fresh memory: the kernel's first write to each page
faults and the system zeroes the page (with transparent huge pages it may compact memory
first). glibc keeps a freed block of that size for the next allocation, but the ten most used
indicators of a 100-symbol panel return ~430 MB, which glibc hands back to the system on
every free, so a repeated panel call spent ~40% of its time faulting pages in.

`empty(n)` hands out a view of a slab this module keeps. A slab is handed out again only when
nothing but this module refers to it: every numpy view, pandas block, Series or Arrow array
over its memory holds a reference to the slab itself (numpy points every view at the array
that owns the memory), so the slab's reference count says whether any of them is alive. Slabs
are kept up to `limit_bytes()` in all ($CRYPTOLAKE_OUTPUT_POOL_MB, default the smaller of
1 GiB and an eighth of the machine's memory; 0 turns the pool off); free slabs are dropped,
oldest first, to make room.
"""
from __future__ import annotations

import os
import sys
import threading

import numpy as np

__all__ = ["empty", "limit_bytes", "MIN_ROWS", "release"]

MIN_ROWS = 1 << 20
"""Outputs shorter than this come from `np.empty` (glibc already reuses blocks below ~32 MB
when they are few; the pool is for the many big outputs of one call)."""

_LOCK = threading.Lock()
_SLABS: list[np.ndarray] = []


def _refs(slab: np.ndarray) -> int:
    return sys.getrefcount(slab)


_probe = [np.empty(1)]
_held = _probe[0]
_FREE = _refs(_held)        # the list, one local name, the parameter, the call's argument
del _probe, _held


def limit_bytes() -> int:
    """How many bytes of slabs the pool keeps at most (in use and free together)."""
    env = os.environ.get("CRYPTOLAKE_OUTPUT_POOL_MB")
    if env is not None and env.strip() != "":
        return max(0, int(float(env) * (1 << 20)))
    try:
        phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):     # pragma: no cover - not POSIX
        phys = 8 << 30
    return min(1 << 30, phys // 8)


# reference counts are the signal: only where the GIL orders them (not free-threaded builds)
_COUNTS_HOLD = getattr(sys, "_is_gil_enabled", lambda: True)()


def empty(n: int) -> np.ndarray:
    """An uninitialised float64 array of n rows (like `np.empty(n)`), from a free slab of
    exactly n rows when the pool has one."""
    if n < MIN_ROWS or not _COUNTS_HOLD:
        return np.empty(n)
    with _LOCK:
        for i in range(len(_SLABS)):
            slab = _SLABS[i]
            if slab.shape[0] == n and _refs(slab) == _FREE:
                return slab[:]
        slab = None                      # our own name would keep the last slab looked at busy
        need = 8 * n
        room = limit_bytes() - need
        fresh = np.empty(n)
        if _drop_free(room) > room:
            return fresh
        _SLABS.append(fresh)
        return fresh[:]


def _drop_free(keep: int) -> int:
    """Drop free slabs, oldest first, until the pool holds at most `keep` bytes (or no free
    slab is left); returns the bytes it still holds. Call with `_LOCK` held."""
    total = sum(s.nbytes for s in _SLABS)
    i = 0
    while total > keep and i < len(_SLABS):
        slab = _SLABS[i]
        if _refs(slab) == _FREE:
            total -= slab.nbytes
            del _SLABS[i]
        else:
            i += 1
    return total


def release() -> int:
    """Drop every free slab now (their memory goes back to the system); returns the bytes
    released."""
    with _LOCK:
        before = sum(s.nbytes for s in _SLABS)
        return before - _drop_free(0)

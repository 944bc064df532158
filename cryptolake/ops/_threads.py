"""The one pool of worker threads for the kernels (one per core). Kernels are compiled
`nogil`, so work handed to these threads runs on all cores at the same time."""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

THREAD_PREFIX = "cryptolake-ind"
_POOL: ThreadPoolExecutor | None = None
_LOCK = threading.Lock()
_CPUS = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else (os.cpu_count() or 1), 32))


def workers() -> int:
    """Cores this process may run on (read once: `os.cpu_count()` costs microseconds)."""
    return _CPUS


def pool() -> ThreadPoolExecutor:
    """The shared worker threads, started on first use."""
    global _POOL
    if _POOL is None:
        with _LOCK:
            if _POOL is None:
                _POOL = ThreadPoolExecutor(max_workers=workers(), thread_name_prefix=THREAD_PREFIX)
    return _POOL


def on_worker() -> bool:
    """True on one of the pool's own threads (work there must not wait on the pool)."""
    return threading.current_thread().name.startswith(THREAD_PREFIX)


def on_threads(parts: list[Callable[[], None]]) -> None:
    """Run the zero-argument callables at the same time: the calling thread takes the first,
    the worker threads the rest. Every part finishes before this returns; the first error
    raised is raised here."""
    futs = [pool().submit(f) for f in parts[1:]]
    try:
        parts[0]()
    finally:
        for fut in futs:
            fut.result()

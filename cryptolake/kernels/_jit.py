"""The one numba policy for every kernel.

- `jit` compiles with `cache=True` into `config.numba_cache_dir()` (the package's own
  `__pycache__` when writable, else a per-user directory), in a sub-directory named after a
  hash of all kernel sources, so the second process pays no compile cost and an edit to any
  kernel never leaves a stale inlined copy in another module's cache.
- No `fastmath`: it reorders floating-point sums and breaks exact agreement with pandas/`ta`.
- `error_model="numpy"`: division by zero gives inf/NaN like numpy and pandas, never raises.
- `warm()` compiles (or loads from cache) every registered kernel on tiny inputs; call it once
  at the start of a scheduled job or a notebook to move the compile cost out of the hot path.

Imports only numpy, numba and the standard library (no pandas under `kernels/`).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import pathlib
import shutil
from typing import Callable

import numba


def _source_digest() -> str:
    """Hash of every kernel module's source. numba re-validates a cached function only against
    its own file, so a caller cached in one module would keep inlining a stale callee from
    another (wrong values, once a segfault); a cache directory per source version avoids it."""
    h = hashlib.sha1()
    for path in sorted(pathlib.Path(__file__).resolve().parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _cache_dir() -> str:
    # Load config.py by path: importing `cryptolake.config` would run cryptolake/__init__,
    # which pulls in pandas.
    path = pathlib.Path(__file__).resolve().parent.parent / "config.py"
    spec = importlib.util.spec_from_file_location("_cryptolake_config", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    base = mod.numba_cache_dir()
    current = "numba-" + _source_digest()
    for old in pathlib.Path(base).glob("numba-*"):   # caches of earlier kernel sources
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)
    return os.path.join(base, current)


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = _cache_dir()

_WARMERS: list[Callable[[], None]] = []


def jit(fn=None, **options):
    """`numba.njit` with the project policy; usable as `@jit` or `@jit(parallel=True)`."""
    opts = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
    opts.update(options)

    def wrap(f):
        return numba.njit(**opts)(f)

    return wrap(fn) if fn is not None else wrap


def register_warmup(fn: Callable[[], None]) -> Callable[[], None]:
    """Register a zero-argument function that calls kernels on tiny arrays (see `warm`)."""
    _WARMERS.append(fn)
    return fn


def warm() -> int:
    """Compile or load from cache every kernel whose module registered a warm-up; returns the count."""
    import cryptolake.kernels  # noqa: F401  (imports every kernel module, which registers warmers)

    for fn in _WARMERS:
        fn()
    return len(_WARMERS)

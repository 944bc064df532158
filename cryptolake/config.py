"""Settings read from the environment. A leaf module: imports only the standard library."""
from __future__ import annotations

import os
from pathlib import Path


def default_root() -> str:
    """Where `cl.Lake()` puts the lake when no URL is given: $CRYPTOLAKE_ROOT or ~/.cryptolake."""
    return os.environ.get("CRYPTOLAKE_ROOT") or str(Path.home() / ".cryptolake")


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


def numba_cache_dir() -> str:
    """Directory for numba's compiled-kernel cache.

    $CRYPTOLAKE_NUMBA_CACHE wins; otherwise the package's own `kernels/__pycache__` when it is
    writable (an editable or user install), else a per-user cache directory (a read-only
    site-packages, a container image).
    """
    explicit = os.environ.get("CRYPTOLAKE_NUMBA_CACHE")
    if explicit:
        return explicit
    in_tree = Path(__file__).resolve().parent / "kernels" / "__pycache__"
    if _writable(in_tree):
        return str(in_tree)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return str(base / "cryptolake" / "numba")


def max_workers(local: bool = False) -> int:
    """Concurrent fetch+parse tasks: $CRYPTOLAKE_WORKERS, else 4 per core and at least 8, or
    one per core when every read and write is `local`.

    Fetching from S3 or HTTP is latency-bound: more requests in flight help. On a local mirror
    into a local lake each task is CPU work (hash, write, inflate), and threads beyond the
    cores only contend for the GIL and the file system: on 2 cores, 8 threads cost the
    month x 10 symbols ingest ~6% more CPU than 2 (benchmarks/bench_ingest.py)."""
    env = os.environ.get("CRYPTOLAKE_WORKERS")
    if env:
        return max(1, int(env))
    cores = os.cpu_count() or 1
    return cores if local else max(8, 4 * cores)


def batch_rows() -> int:
    """Rows per batch when big files (aggTrades, trades, bookTicker) stream from bronze to
    silver: $CRYPTOLAKE_BATCH_ROWS, else 250,000. Peak memory of an ingest scales with it."""
    env = os.environ.get("CRYPTOLAKE_BATCH_ROWS")
    if env:
        n = int(env)
        if n < 1:
            raise ValueError(f"CRYPTOLAKE_BATCH_ROWS must be a positive integer, got {env!r}")
        return n
    return 250_000

"""The bar grid of an archive interval: where bars of `1m`, `1h`, `1w` or `1mo` open.

One home for "is this bar on the grid?" and "which grid points lie in a span?", used by the
gap engine (`cryptolake.quality`), the silver writer (per-partition counts recorded at write
time) and `df.lake` (frames read from the lake carry their interval in `df.attrs`).

Times are int64 microseconds since the epoch (silver's unit). Fixed intervals open on
multiples of their length since the epoch, except `1w` (Binance weeks open on Monday 00:00
UTC; the epoch was a Thursday). `1mo` bars open at 00:00 UTC on the first of each month.
A leaf module: numpy only.
"""
from __future__ import annotations

import numpy as np

US = {"s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000,
      "w": 604_800_000_000}
_WEEK_ORIGIN_US = 4 * US["d"]          # 1970-01-05, a Monday
ATTR = "interval"                      # df.attrs key naming a frame's archive interval


def is_calendar(interval: str) -> bool:
    """True for `1mo`, whose bars have no fixed length."""
    return interval == "1mo"


def step_us(interval: str) -> int:
    """Bar length in microseconds of a fixed interval (`"1m"` -> 60_000_000)."""
    if is_calendar(interval):
        raise ValueError("1mo bars have no fixed length; use grid.points() for month starts")
    try:
        return int(interval[:-1]) * US[interval[-1]]
    except (KeyError, ValueError):
        raise ValueError(f"{interval!r} is not an archive interval like '1m', '1h', '1d', '1w', '1mo'") from None


def origin_us(interval: str) -> int:
    """A grid point: every bar of a fixed interval opens at origin + k * step."""
    return _WEEK_ORIGIN_US if interval.endswith("w") else 0


def _month_index(t_us: np.ndarray) -> np.ndarray:
    return np.asarray(t_us, dtype=np.int64).astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)


def _month_start_us(month_index: np.ndarray) -> np.ndarray:
    return np.asarray(month_index, dtype=np.int64).astype("datetime64[M]").astype("datetime64[us]").astype(np.int64)


def on_grid(t_us: np.ndarray, interval: str) -> np.ndarray:
    """Boolean mask: which times are bar open times of `interval`."""
    t = np.asarray(t_us, dtype=np.int64)
    if is_calendar(interval):
        return _month_start_us(_month_index(t)) == t
    return (t - origin_us(interval)) % step_us(interval) == 0


def floor(t_us: np.ndarray, interval: str) -> np.ndarray:
    """The open time of the bar that contains each time."""
    t = np.asarray(t_us, dtype=np.int64)
    if is_calendar(interval):
        return _month_start_us(_month_index(t))
    o, s = origin_us(interval), step_us(interval)
    return t - (t - o) % s


def ceil(t_us: np.ndarray, interval: str) -> np.ndarray:
    """The first grid point at or after each time."""
    t = np.asarray(t_us, dtype=np.int64)
    f = floor(t, interval)
    if is_calendar(interval):
        return np.where(f == t, f, _month_start_us(_month_index(t) + 1))
    return np.where(f == t, f, f + step_us(interval))


def count(lo_us: int, hi_us: int, interval: str) -> int:
    """How many grid points lie in [lo, hi] (both inclusive)."""
    lo = int(ceil(np.array([lo_us]), interval)[0])
    hi = int(floor(np.array([hi_us]), interval)[0])
    if hi < lo:
        return 0
    if is_calendar(interval):
        return int(_month_index(np.array([hi]))[0] - _month_index(np.array([lo]))[0]) + 1
    return (hi - lo) // step_us(interval) + 1


def points(lo_us: int, hi_us: int, interval: str) -> np.ndarray:
    """Every grid point in [lo, hi] (inclusive), as int64 microseconds."""
    lo = int(ceil(np.array([lo_us]), interval)[0])
    hi = int(floor(np.array([hi_us]), interval)[0])
    if hi < lo:
        return np.empty(0, np.int64)
    if is_calendar(interval):
        m0, m1 = _month_index(np.array([lo, hi]))
        return _month_start_us(np.arange(m0, m1 + 1))
    return np.arange(lo, hi + 1, step_us(interval), dtype=np.int64)


def partition_stats(t_us: np.ndarray, interval: str | None, volume: np.ndarray | None = None) -> dict:
    """Counts a writer records per partition so that coverage needs no data read:
    rows, on_grid, off_grid, zero_volume (bars with volume == 0), first, last (µs or None).
    `interval=None` (tables with no bar grid, e.g. funding) counts every row as on the grid."""
    t = np.asarray(t_us, dtype=np.int64)
    n = len(t)
    ok = int(on_grid(t, interval).sum()) if interval and n else n
    zero = int((np.asarray(volume) == 0).sum()) if volume is not None and n else 0
    return {"rows": n, "on_grid": ok, "off_grid": n - ok, "zero_volume": zero,
            "first": int(t.min()) if n else None, "last": int(t.max()) if n else None}


def combine_stats(a: dict | None, b: dict) -> dict:
    """The `partition_stats` of two disjoint sets of rows (a partition written batch by batch)."""
    if a is None:
        return dict(b)
    firsts = [x for x in (a["first"], b["first"]) if x is not None]
    lasts = [x for x in (a["last"], b["last"]) if x is not None]
    return {"rows": a["rows"] + b["rows"], "on_grid": a["on_grid"] + b["on_grid"],
            "off_grid": a["off_grid"] + b["off_grid"], "zero_volume": a["zero_volume"] + b["zero_volume"],
            "first": min(firsts) if firsts else None, "last": max(lasts) if lasts else None}

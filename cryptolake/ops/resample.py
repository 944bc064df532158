"""OHLCV resampling: pandas in -> `kernels.resample` -> pandas out.

The bins come from `ops._bins` (fixed rules by a kernel, calendar rules from pandas' offsets),
the time axis and the bar size from `ops._time`; this module aggregates the columns.
"""
from __future__ import annotations

import functools
import os
import weakref

import numpy as np
import pandas as pd

from .. import grid
from ..kernels import resample as kr
from ._bins import Bins, output_attrs
from ._frame import (OHLC, SUM_COLUMNS, column_arrays, frame_from_blocks,
                     times_from_ticks)
from ._time import UNIT_NS, bar_step, check_frame, rebuild_index
from ._time import infer_step  # noqa: F401  (its old home: tests and notebooks import it here)

# ---------------------------------------------------------------- resample
def _how(dt) -> str | None:
    """How a column of dtype `dt` (named in OHLC or SUM_COLUMNS or not) is aggregated."""
    if pd.api.types.is_bool_dtype(dt):
        return "any"
    if pd.api.types.is_numeric_dtype(dt) or isinstance(dt, pd.DatetimeTZDtype) \
            or pd.api.types.is_datetime64_dtype(dt):
        return "last"
    return None


@functools.lru_cache(maxsize=512)
def _plan_of(names: tuple, dtypes: tuple) -> tuple:
    """How each of the columns `names` (of `dtypes`) is aggregated: OHLC first/max/min/last,
    volumes and trades sum, bool any, other numeric and datetime columns last; others are
    dropped. ((position, name, how, kind), ...) of the kept ones (kind: see `_out_kind`)."""
    plan = []
    for i, (col, dt) in enumerate(zip(names, dtypes)):
        if col in OHLC:
            how = {"open": "first", "high": "max", "low": "min", "close": "last"}[col]
        elif col in SUM_COLUMNS and pd.api.types.is_numeric_dtype(dt):
            how = "sum"
        else:
            how = _how(dt)
        if how is not None:
            plan.append((i, col, how, _out_kind(dt, how)))
    return tuple(plan)


def _out_kind(dt, how: str) -> str:
    """What `_aggregate` writes for a column: "f" a float64 row of `Bins.block`, "i" an int64
    row of it, "o" another array (bool, datetime)."""
    if how == "any" or isinstance(dt, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dt):
        return "o"
    if isinstance(dt, np.dtype) and dt.kind in "iu" and how in ("sum", "last"):
        return "i"
    return "f"


def _plan(df: pd.DataFrame, arrays: list) -> tuple:
    """((position, name, how, kind), ...) of the columns resample keeps (see `_plan_of`), cached
    per column names and dtypes, so that a repeated call costs a dict lookup."""
    names = _names(df.columns)
    if not df.columns.is_unique:
        dup = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise ValueError(f"duplicate column name(s) {dup}: resample needs one column per name; "
                         "fix with df.loc[:, ~df.columns.duplicated()]")
    dtypes = tuple(a.dtype for a in arrays)
    try:
        return _plan_of(names, dtypes)
    except TypeError:           # an unhashable name or dtype: not cached
        return _plan_of.__wrapped__(names, dtypes)


_NAMES: dict = {}


def _names(columns: pd.Index) -> tuple:
    """`tuple(columns)`, remembered per Index object (an Index is immutable; iterating pandas'
    Arrow-backed string columns costs ~2 us per name)."""
    hit = _NAMES.get(id(columns))
    if hit is not None and hit[0]() is columns:
        return hit[1]
    names = tuple(columns)
    if len(_NAMES) >= 256:
        _NAMES.clear()
    _NAMES[id(columns)] = (weakref.ref(columns), names)
    return names


_KERNELS = {"first": kr.bin_first, "max": kr.bin_max, "min": kr.bin_min, "last": kr.bin_last}
# Below this many rows the column kernels run one after another; above, on two threads (the
# kernels release the GIL; each column is still reduced by one thread, so results do not
# depend on the threading).
_PARALLEL_MIN_ROWS = 1 << 17
_POOL: list = []


def _pool():
    if not _POOL:
        from concurrent.futures import ThreadPoolExecutor
        _POOL.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="cryptolake-bins"))
    return _POOL[0]


def _drain(jobs) -> None:
    for fn, args in jobs:   # a shared iterator: each thread takes the next job (atomic in CPython)
        fn(*args)


def _run(jobs: list, nrows: int) -> None:
    """Run `(fn, args)` jobs: in this thread, plus a second one for large inputs when the
    machine has two cores or more."""
    if nrows < _PARALLEL_MIN_ROWS or len(jobs) < 2 or (os.cpu_count() or 1) < 2:
        _drain(jobs)
        return
    it = iter(jobs)
    fut = _pool().submit(_drain, it)
    try:
        _drain(it)
    finally:
        fut.result()


def _sum(x: np.ndarray, bins: Bins, out: np.ndarray) -> np.ndarray:
    """pandas' float sum per bin: `np.add.reduceat` where the (per-symbol) column has no NaN,
    NaN-skipping Kahan sums where it has some."""
    kr.bin_sum_pairwise(x, bins.starts, bins.nb, out)
    nan_bins = np.flatnonzero(np.isnan(out))
    if len(nan_bins):
        seg_starts = bins.segnb
        for s in np.unique(np.searchsorted(seg_starts, nan_bins, side="right") - 1):
            b0, b1 = seg_starts[s], seg_starts[s + 1]
            if np.isnan(x[bins.starts[b0]:bins.starts[b1]]).any():
                kr.bin_sum(x, bins.starts[b0:b1 + 1], b1 - b0, out[b0:b1])
    return out


def _to_numpy(arr, dtype, **kw) -> np.ndarray:
    """`pd.Series(arr).to_numpy(dtype=dtype, copy=False, **kw)` without building a Series for
    numpy columns."""
    if isinstance(arr, np.ndarray):
        return np.asarray(arr, dtype=dtype)
    return pd.Series(arr, copy=False).to_numpy(dtype=dtype, copy=False, **kw)


def _aggregate(arr, how: str, bins: Bins, jobs: list):
    """Append the kernel call(s) that fill the output of column `arr` (as stored: a numpy or
    extension array) to `jobs`; return a function that gives the output column once the jobs
    have run."""
    starts, nb = bins.starts, bins.nb
    if how == "any":
        x = _to_numpy(arr, np.bool_).view(np.uint8)
        out = bins.column()
        jobs.append((kr.bin_max, (x, starts, nb, out)))
        return lambda: out > 0
    dt = arr.dtype
    if isinstance(dt, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dt):
        ticks = bins.column(np.int64)
        jobs.append((kr.bin_last, (np.asarray(arr.asi8), starts, nb, ticks)))
        if arr.tz is not None:
            return lambda: times_from_ticks(ticks, dt).array
        return lambda: pd.array(ticks.view(f"M8[{arr.unit}]"), dtype=dt)
    if isinstance(dt, np.dtype) and dt.kind in "iu" and how in ("sum", "last"):
        x = np.ascontiguousarray(_to_numpy(arr, np.int64))
        out = bins.column(np.int64)
        jobs.append((kr.bin_sum_int if how == "sum" else kr.bin_last, (x, starts, nb, out)))
        return lambda: out
    x = np.ascontiguousarray(_to_numpy(arr, np.float64, na_value=np.nan))
    out = bins.column()
    if how == "sum":
        jobs.append((_sum, (x, bins, out)))
    else:
        jobs.append((_KERNELS[how], (x, starts, nb, out)))
    return lambda: out


def expected_bars(lo: np.ndarray, hi: np.ndarray, bseg: np.ndarray, t: np.ndarray,
                  seg: np.ndarray, bar: int) -> np.ndarray:
    """How many bars of size `bar` (on the grid of each segment's first bar, `t[seg[s]]`)
    bin [lo, hi) holds when nothing is missing."""
    phase = (t[seg[:-1]] % bar)[bseg] if len(lo) else np.zeros(0, np.int64)
    g0 = lo + (phase - lo) % bar
    return np.maximum((hi - 1 - g0) // bar + 1, 0)


def expected_months(lo: np.ndarray, hi: np.ndarray, unit: str) -> np.ndarray:
    """How many monthly (`1mo`) bars bin [lo, hi) holds: the month starts (UTC) inside it."""
    def first_month(x):          # index of the first month that starts at or after x
        us = -(-(x * UNIT_NS[unit]) // 1000)
        return grid.ceil(us, "1mo").astype("datetime64[us]").astype("datetime64[M]") \
            .astype(np.int64)
    return first_month(hi) - first_month(lo)


def _complete(df: pd.DataFrame, bins: Bins, count: np.ndarray, t: np.ndarray, seg: np.ndarray,
              lev: pd.DatetimeIndex, freq) -> np.ndarray:
    """Which bins hold every bar of the source grid (the bar size from `bar_step`; calendar
    months for `1mo` sources; none when the size is unknown and no symbol has two bars)."""
    lo, hi = bins.extent()
    interval = freq if freq is not None else df.attrs.get(grid.ATTR)
    if isinstance(interval, str) and grid.is_calendar(interval):
        return count >= expected_months(lo, hi, lev.unit)
    if interval is None and np.diff(seg).max() < 2:
        return np.zeros(len(count), bool)     # one row per symbol: no bin is known complete
    return count >= expected_bars(lo, hi, bins.bseg, t, seg, bar_step(df, t, seg, lev, freq))


def resample(df: pd.DataFrame, rule, offset=None, partial: bool = True, *,
             bars: bool = False, freq=None) -> pd.DataFrame:
    """OHLCV-aware `df.resample(rule, offset=offset)`, per symbol on a (symbol, time) MultiIndex.

    open first, high max, low min, close last; every volume column present
    (`volume, quote_volume, base_volume, taker_buy_volume, taker_buy_quote_volume,
    taker_buy_base_volume`) and `trades` summed; bool columns (`is_filled`) any; other numeric
    and datetime columns (`close_time`) last; other columns (`source`, strings) are dropped.
    Bins follow pandas exactly, for fixed rules ('5min', '4h', '1D': origin='start_day',
    closed/label left; as pandas does, an `offset` is ignored for 'D' rules on a tz-aware
    index, with a warning: use '24h') and calendar rules ('W', 'W-MON'..'W-SUN', 'ME', 'MS',
    'QE', 'QS', 'YE', 'YS', anchored ones like 'QE-MAR', multiples like '2W': end rules are
    closed right and labelled by their last day, start rules by their first, as in pandas;
    `offset` is refused with them). On every non-empty bin the values equal
    `df.resample(rule, offset=offset).agg(...)`; empty bins are dropped instead of being NaN
    rows.

    partial=False keeps only bins that hold every bar of the source grid; the bar size is
    `freq`, else `df.attrs["interval"]` (frames read from the lake; `1mo` counts calendar
    months), else a guess that raises when ambiguous (see `ops._time.bar_step`). A symbol
    with a single row and no known bar size has no complete bin. bars=True adds an int64
    column `bars`: the number of source rows in each bin. The index keeps the input's unit,
    tz and names; `attrs` are kept, with `interval` set when the output bars are an archive
    interval's ('4h', '1d', '1mo') and dropped otherwise.
    """
    t, lev, seg = check_frame(df, gather=False)
    codes = None
    if t is None:   # a MultiIndex: bins are found through the time level's codes
        t, codes = np.asarray(lev.asi8), np.asarray(df.index.codes[-1])
    arrays = column_arrays(df)
    plan = _plan(df, arrays)
    bins = Bins(t, lev, seg, rule, offset, len(plan), codes)
    jobs: list = []
    # float outputs first, then int64 ones: each kind is consecutive rows of `bins.block`, so
    # that it becomes one pandas block of the output without a copy (see `_blocks`)
    finish = {c: _aggregate(arrays[i], how, bins, jobs)
              for kind in "fio" for i, c, how, k in plan if k == kind}
    # the reads of whole columns (sums, extremes) first, first/last (a value or two per bin) last
    jobs.sort(key=lambda j: j[0] in (kr.bin_first, kr.bin_last))
    _run(jobs, len(df))
    names = [c for _, c, _, _ in plan]
    blocks = _blocks(plan, finish, bins)
    labels, bseg = bins.labels, None
    keep = None
    multi = isinstance(df.index, pd.MultiIndex)
    if multi or not partial:
        bseg = bins.bseg
    if bars or not partial:
        count = np.diff(bins.starts[:bins.nb + 1])
    if not partial and bins.nb:
        keep = _complete(df, bins, count, t if codes is None else t[codes], seg, lev, freq)
    if bars:
        if "bars" in names:     # an input column named bars: replaced in its place
            blocks = [(v, [k]) for vals, pos in blocks for v, k in
                      (zip(vals, pos) if vals.ndim == 2 else [(vals, pos[0])])
                      if names[k] != "bars"] + [(count, [names.index("bars")])]
        else:
            blocks.append((count, [len(names)]))
            names.append("bars")
    if keep is not None and not keep.all():
        blocks = [(v[..., keep], pos) for v, pos in blocks]
        labels, bseg = labels[keep], bseg[keep]
    if multi:
        index = rebuild_index(labels, df, lev, bseg, seg, bins.step)
    else:
        index = times_from_ticks(labels, lev.dtype, lev.name)
    out = frame_from_blocks(names, blocks, index)
    out.attrs = output_attrs(df.attrs, bins.interval(lev.unit))
    return out


def _blocks(plan: tuple, finish: dict, bins: Bins) -> list:
    """The output columns as (values, positions) blocks for `frame_from_blocks`: the float
    rows of `bins.block` as one 2-D block, the int64 rows as another, other columns alone."""
    nb, pos = bins.nb, {c: k for k, (_, c, _, _) in enumerate(plan)}
    blocks, row = [], 2
    for kind, dtype in (("f", np.float64), ("i", np.int64)):
        cols = [c for _, c, _, k in plan if k == kind]
        if cols:
            blocks.append((bins.block[row:row + len(cols), :nb].view(dtype),
                           [pos[c] for c in cols]))
            row += len(cols)
    blocks += [(finish[c](), [pos[c]]) for _, c, _, k in plan if k == "o"]
    return blocks

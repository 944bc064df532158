"""OHLCV resampling: pandas in -> `kernels.resample` -> pandas out.

Also the helpers that every time-grid op shares (`check_frame`, `time_axis`, `segments`,
`rule_ticks`, `infer_step`, `rebuild_index`, `Bins`): the kernels work on int64 ticks in the
index's own unit (no conversion copy for silver's microseconds), one segment per symbol.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd

from ..kernels import gaps as kg
from ..kernels import resample as kr
from ._frame import OHLC, time_index, validate_frame

VOLUME_COLUMNS = ("volume", "quote_volume", "base_volume", "taker_buy_volume",
                  "taker_buy_quote_volume", "taker_buy_base_volume")
SUM_COLUMNS = VOLUME_COLUMNS + ("trades",)
_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_DAY_NS = 86_400_000_000_000


# ---------------------------------------------------------------- shared helpers
def segments(df: pd.DataFrame) -> np.ndarray:
    """Row boundaries of the symbols of a (symbol, time) MultiIndex (`[0, len(df)]` otherwise)."""
    n = len(df)
    if isinstance(df.index, pd.MultiIndex) and n:
        codes = np.asarray(df.index.codes[0])
        cuts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
        return np.concatenate(([0], cuts, [n])).astype(np.int64)
    return np.array([0, n] if n else [0], dtype=np.int64)


def time_axis(df: pd.DataFrame) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """(ticks, level): the time of every row as int64 ticks of its unit, and a DatetimeIndex
    that carries that unit, tz and name. On a MultiIndex the ticks are gathered with numpy
    from the time level's codes (pandas' `get_level_values` costs several times more)."""
    idx = df.index
    if not isinstance(idx, pd.MultiIndex):
        return time_index(df).asi8, idx
    lev = idx.levels[-1]
    if not isinstance(lev, pd.DatetimeIndex):
        time_index(df.iloc[:0])  # raises the message that says how to fix it
    codes = np.asarray(idx.codes[-1])
    t = np.empty(len(codes), np.int64)
    kr.gather(np.asarray(lev.asi8), codes, t)
    return t, lev.rename(idx.names[-1])


def check_frame(df: pd.DataFrame, need=OHLC, *, strict: bool = True, ticks: bool = True,
                gather: bool = True):
    """`validate_frame` with the order check done by a kernel (no hash table for uniqueness):
    tz-aware time index, columns `need`, symbols contiguous and times increasing per symbol
    (strictly unless `strict=False`, as trades may share a timestamp).

    Returns (ticks, level, seg) from `time_axis` and `segments` for the caller to reuse;
    with `ticks=False` (the accessor's check) a MultiIndex with a sorted time level is checked
    on its codes, without gathering the ticks, and None is returned. With `gather=False`
    such a MultiIndex gives ticks None and the caller reads the level through the codes.
    """
    multi = isinstance(df.index, pd.MultiIndex)
    # on a MultiIndex the tz and column checks need no rows (time_index would gather them all)
    validate_frame(df.iloc[:0] if multi else df, need=need, monotonic=False)
    if multi and len(df) > 1:
        codes = np.asarray(df.index.codes[0])
        if (codes[1:] < codes[:-1]).any():
            raise ValueError("the symbols are not sorted (rows of a symbol must be together); "
                             "fix with df.sort_index()")
    seg = segments(df)
    t = lev = None
    if multi and df.index.levels[-1].is_monotonic_increasing:
        # level values are unique: the codes are ordered (strictly) as the times are
        bad = kg.first_unsorted(np.asarray(df.index.codes[-1]), seg, strict)
        if ticks and gather:
            t, lev = time_axis(df)
        elif ticks:
            lev = df.index.levels[-1]
            if not isinstance(lev, pd.DatetimeIndex):
                time_index(df.iloc[:0])  # raises the message that says how to fix it
            lev = lev.rename(df.index.names[-1])
    else:
        t, lev = time_axis(df)
        idx = df.index
        if not multi and idx.is_monotonic_increasing and (not strict or idx.is_unique):
            bad = -1    # pandas caches both on the index: free from the second call on
        else:
            bad = kg.first_unsorted(t, seg, strict)
    if bad >= 0:
        what = "not strictly increasing (unsorted or duplicated)" if strict else "not sorted"
        fix = "df.sort_index()" + (" and df[~df.index.duplicated()]" if strict else "")
        raise ValueError(f"the time index is {what} at row {bad} ({df.index[bad]}); "
                         f"fix with {fix}")
    return (t, lev, seg) if ticks else None


def as_times(ticks: np.ndarray, lev: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Ticks back to a DatetimeIndex with `lev`'s unit, tz and name (no copy of the ticks)."""
    dtype = pd.DatetimeTZDtype(unit=lev.unit, tz="UTC")
    out = pd.DatetimeIndex(ticks.view(f"M8[{lev.unit}]"), dtype=dtype, name=lev.name)
    return out.tz_convert(lev.tz)


def _to_ns(value, what: str) -> int:
    try:
        return int(pd.Timedelta(value).value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what}={value!r} is not a duration; use e.g. '5min', '1h', '1D'") from exc


def _in_ticks(ns: int, unit_ns: int, what: str, unit: str) -> int:
    if ns % unit_ns:
        raise ValueError(f"{what} is finer than the index unit '{unit}'; "
                         f"fix with df.index = df.index.as_unit('ns') (or the matching level)")
    return ns // unit_ns


def rule_ticks(rule, unit: str) -> tuple[int, bool]:
    """A fixed rule ('30s', '5min', '1h', '1D', a Timedelta) in ticks of `unit`; also whether
    it is a pandas Day rule (pandas ignores `offset` for those on a tz-aware index)."""
    try:
        off = pd.tseries.frequencies.to_offset(rule)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"rule={rule!r} is not a frequency; use e.g. '5min', '1h', '1D'") from exc
    if isinstance(off, pd.offsets.Tick):
        ns = int(pd.Timedelta(off).value)
    elif isinstance(off, pd.offsets.Day):
        ns = off.n * _DAY_NS
    else:
        raise ValueError(f"rule={rule!r} is a calendar rule; df.lake supports fixed rules in "
                         "seconds, minutes, hours or days ('15s', '5min', '4h', '1D', '7D')")
    if ns <= 0:
        raise ValueError(f"rule={rule!r} must be a positive duration")
    return _in_ticks(ns, _UNIT_NS[unit], f"rule={rule!r}", unit), isinstance(off, pd.offsets.Day)


def infer_step(t: np.ndarray, seg: np.ndarray) -> int:
    """The bar size: the most common positive diff within segments (majority vote, with a
    full `np.unique` mode as fallback). Raises ValueError when there are fewer than two bars."""
    # A candidate voted on a sample of ~4096 diffs, confirmed by one exact count; the full
    # two-pass vote only when the sample's candidate is not a majority of all diffs.
    cand = kg.sample_step(t, seg, max(1, len(t) // 4096))
    count, total = kg.count_step(t, seg, cand) if cand > 0 else (0, 0)
    if cand <= 0 or 2 * count <= total:
        cand, count, total = kg.majority_step(t, seg)
    if total == 0:
        raise ValueError("cannot infer the bar size (the most common time step) from fewer "
                         "than two bars per symbol; pass more bars, or freq= where accepted")
    if 2 * count > total:
        return int(cand)
    d = np.diff(t)
    inner = np.ones(len(d), dtype=bool)
    inner[seg[1:-1] - 1] = False
    d = d[inner & (d > 0)]
    vals, counts = np.unique(d, return_counts=True)
    return int(vals[np.argmax(counts)])


def _time_codes(ticks: np.ndarray, step: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(codes, sorted unique ticks) of `ticks`. When every tick lies on one grid of `step`
    (all symbols share the bin phase, as with rules that divide a day) the codes are grid
    offsets, with no hashing; otherwise `pd.factorize` then a sort of the uniques."""
    if step and len(ticks):
        lo = int(ticks.min())
        span = (int(ticks.max()) - lo) // step + 1
        if span <= 4 * len(ticks) + 1024:
            pos = np.empty(len(ticks), np.int64)
            used = np.zeros(span, np.bool_)
            if kr.grid_codes(ticks, lo, step, pos, used):
                uniq = np.empty(span, np.int64)
                nu = kr.grid_rank(pos, used, lo, step, np.empty(span, np.int64), uniq)
                return pos, uniq[:nu]
    codes, uniq = pd.factorize(ticks)
    order = np.argsort(uniq, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[codes], uniq[order]


def rebuild_index(ticks: np.ndarray, like: pd.DataFrame, lev: pd.DatetimeIndex,
                  seg_of_row: np.ndarray | None = None, seg: np.ndarray | None = None,
                  step: int | None = None) -> pd.Index:
    """A time index like `lev` (unit, tz, name) from ticks; a (symbol, time) MultiIndex when
    `like` has one, with `seg_of_row` giving each row's segment of `seg` (`step`: the grid the
    ticks are likely on, which makes the time codes cheap)."""
    if not isinstance(like.index, pd.MultiIndex):
        return as_times(ticks, lev)
    sym_codes = np.asarray(like.index.codes[0])[seg[:-1]][seg_of_row]
    codes, uniq = _time_codes(ticks, step)
    return pd.MultiIndex(levels=[like.index.levels[0], as_times(uniq, lev)],
                         codes=[sym_codes, codes], names=like.index.names,
                         verify_integrity=False)


def origins(t: np.ndarray, lev: pd.DatetimeIndex, seg: np.ndarray, offset_ticks: int,
            codes: np.ndarray | None = None) -> np.ndarray:
    """pandas' origin='start_day' per segment: midnight (in the index's tz) of its first day,
    plus the offset, as ticks (`codes`: row times are `t[codes]`)."""
    rows = seg[:-1] if codes is None else codes[seg[:-1]]
    firsts = as_times(np.ascontiguousarray(t[rows]), lev)
    return np.ascontiguousarray(firsts.normalize().asi8 + offset_ticks, dtype=np.int64)


def _is_utc(idx: pd.DatetimeIndex) -> bool:
    return str(idx.tz) in ("UTC", "UTC+00:00", "Etc/UTC")


class Bins:
    """The non-empty bins of `df.resample(rule, offset=offset)` per segment of ticks `t`, and
    the memory for their outputs: `starts`, `labels` and every output column are rows of one
    allocation (fresh pages fault once per allocation's pages, not per column).

    `starts[:nb + 1]` first row of each bin (then len(t)); `labels[:nb]` bin open ticks;
    `segnb[s]` first bin of segment `s`; `column()` hands out the next output row.
    Shared by `resample` and `trades_to_bars`.
    """

    def __init__(self, t: np.ndarray, idx: pd.DatetimeIndex, seg: np.ndarray, rule, offset,
                 ncols: int, codes: np.ndarray | None = None):
        """`codes`: `t` is a MultiIndex level's ticks and row `i`'s time is `t[codes[i]]`."""
        self.step, off = _rule_and_offset(rule, offset, idx)
        origin = origins(t, idx, seg, off, codes)
        self.segnb = np.empty(len(seg), np.int64)
        # Size the outputs by a bound on the bin count (a segment spanning `d` ticks has at
        # most d // step + 2 bins, and no more bins than rows) and find the bins in one call;
        # np.empty pages that stay unused are never touched.
        if len(seg) > 1:
            first, last = seg[:-1], seg[1:] - 1
            if codes is not None:
                first, last = codes[first], codes[last]
            span = t[last] - t[first]
            bound = int(np.minimum(span // self.step + 2, np.diff(seg)).sum())
        else:
            bound = 0
        self.block = np.empty((ncols + 2, bound + 1))
        starts = self.block[0].view(np.int64)
        labels = self.block[1].view(np.int64)
        if codes is None:
            nb = kr.bin_edges(t, seg, origin, self.step, starts, labels, self.segnb, True)
        else:
            nb = kr.bin_edges_at(t, codes, seg, origin, self.step, starts, labels, self.segnb,
                                 True)
        self.starts = starts[:nb + 1]
        self.labels = labels[:nb]
        self.nb = nb
        self._next = 2

    def column(self, dtype=np.float64) -> np.ndarray:
        """The next free output row (float64, or an int64 view of it)."""
        row = self.block[self._next, :self.nb]
        self._next += 1
        return row if np.dtype(dtype) == np.float64 else row.view(dtype)

    @property
    def bseg(self) -> np.ndarray:
        """The segment of every bin."""
        return np.repeat(np.arange(len(self.segnb) - 1), np.diff(self.segnb))


def _rule_and_offset(rule, offset, idx: pd.DatetimeIndex) -> tuple[int, int]:
    unit_ns = _UNIT_NS[idx.unit]
    step, is_day = rule_ticks(rule, idx.unit)
    off = 0
    if offset is not None:
        off = _in_ticks(_to_ns(offset, "offset"), unit_ns, f"offset={offset!r}", idx.unit)
    if is_day:
        if not _is_utc(idx):
            raise ValueError(f"rule={rule!r} on a {idx.tz} index means calendar days in pandas; "
                             "fix with df.tz_convert('UTC') or use an hour rule like '24h'")
        if off:
            warnings.warn(f"offset={offset!r} has no effect with a 'D' rule on a tz-aware index "
                          "(pandas ignores it and df.lake matches pandas); use rule='24h' with "
                          "the offset to shift daily bins", RuntimeWarning, stacklevel=4)
            off = 0
    return step, off


# ---------------------------------------------------------------- resample
def _column_plan(df: pd.DataFrame) -> dict[str, str]:
    """How each column is aggregated: OHLC first/max/min/last, volumes and trades sum,
    bool any, other numeric and datetime columns last; others are dropped."""
    plan = {}
    for col, dt in zip(df.columns, df.dtypes):
        if col in OHLC:
            plan[col] = {"open": "first", "high": "max", "low": "min", "close": "last"}[col]
        elif col in SUM_COLUMNS and pd.api.types.is_numeric_dtype(dt):
            plan[col] = "sum"
        elif pd.api.types.is_bool_dtype(dt):
            plan[col] = "any"
        elif pd.api.types.is_numeric_dtype(dt) or isinstance(dt, pd.DatetimeTZDtype) \
                or pd.api.types.is_datetime64_dtype(dt):
            plan[col] = "last"
    return plan


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


def _aggregate(s: pd.Series, how: str, bins: Bins, jobs: list):
    """Append the kernel call(s) that fill column `s`'s output to `jobs`; return a function
    that gives the output column once the jobs have run."""
    starts, nb = bins.starts, bins.nb
    if how == "any":
        x = s.to_numpy(dtype=np.bool_, copy=False).view(np.uint8)
        out = bins.column()
        jobs.append((kr.bin_max, (x, starts, nb, out)))
        return lambda: out > 0
    dt = s.dtype
    if isinstance(dt, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dt):
        arr = s.array
        ticks = bins.column(np.int64)
        jobs.append((kr.bin_last, (np.asarray(arr.asi8), starts, nb, ticks)))
        if arr.tz is not None:
            like = pd.DatetimeIndex([], dtype=dt)
            return lambda: as_times(ticks, like).array
        return lambda: pd.array(ticks.view(f"M8[{arr.unit}]"), dtype=dt)
    if isinstance(dt, np.dtype) and dt.kind in "iu" and how in ("sum", "last"):
        x = np.ascontiguousarray(s.to_numpy(dtype=np.int64, copy=False))
        out = bins.column(np.int64)
        jobs.append((kr.bin_sum_int if how == "sum" else kr.bin_last, (x, starts, nb, out)))
        return lambda: out
    x = np.ascontiguousarray(s.to_numpy(dtype=np.float64, copy=False, na_value=np.nan))
    out = bins.column()
    if how == "sum":
        jobs.append((_sum, (x, bins, out)))
    else:
        jobs.append((_KERNELS[how], (x, starts, nb, out)))
    return lambda: out


def expected_bars(labels: np.ndarray, bseg: np.ndarray, t: np.ndarray, seg: np.ndarray,
                  step: int, bar: int) -> np.ndarray:
    """How many bars of size `bar` (on the grid of each segment's first bar) bin [L, L+step)
    holds when nothing is missing."""
    phase = (t[seg[:-1]] % bar)[bseg] if len(labels) else np.zeros(0, np.int64)
    g0 = labels + (phase - labels) % bar
    return np.maximum((labels + step - 1 - g0) // bar + 1, 0)


def resample(df: pd.DataFrame, rule, offset=None, partial: bool = True, *,
             bars: bool = False) -> pd.DataFrame:
    """OHLCV-aware `df.resample(rule, offset=offset)`, per symbol on a (symbol, time) MultiIndex.

    open first, high max, low min, close last; every volume column present
    (`volume, quote_volume, base_volume, taker_buy_volume, taker_buy_quote_volume,
    taker_buy_base_volume`) and `trades` summed; bool columns (`is_filled`) any; other numeric
    and datetime columns (`close_time`) last; other columns (`source`, strings) are dropped.
    Bins follow pandas exactly (origin='start_day', closed/label left; as pandas does, an
    `offset` is ignored for 'D' rules on a tz-aware index, with a warning: use '24h'). On every
    non-empty bin the values equal `df.resample(rule, offset=offset).agg(...)`; empty bins are
    dropped instead of being NaN rows.

    partial=False drops bins that lack any of their bars (the bar size is the most common
    diff). bars=True adds an int64 column `bars`: the number of source rows in each bin.
    The index keeps the input's unit, tz and names.
    """
    t, lev, seg = check_frame(df, gather=False)
    codes = None
    if t is None:   # a MultiIndex: bins are found through the time level's codes
        t, codes = np.asarray(lev.asi8), np.asarray(df.index.codes[-1])
    plan = _column_plan(df)
    bins = Bins(t, lev, seg, rule, offset, len(plan), codes)
    jobs: list = []
    finish = {c: _aggregate(col, plan[c], bins, jobs) for c, col in df.items() if c in plan}
    # the reads of whole columns (sums, extremes) first, first/last (a value or two per bin) last
    jobs.sort(key=lambda j: j[0] in (kr.bin_first, kr.bin_last))
    _run(jobs, len(df))
    cols = {c: f() for c, f in finish.items()}
    labels, bseg = bins.labels, None
    count = np.diff(bins.starts[:bins.nb + 1])
    keep = None
    if isinstance(df.index, pd.MultiIndex) or not partial:
        bseg = bins.bseg
    if not partial and bins.nb:
        if codes is not None:
            t = t[codes]
        keep = count >= expected_bars(labels, bseg, t, seg, bins.step, infer_step(t, seg))
    if bars:
        cols["bars"] = count
    if keep is not None and not keep.all():
        cols = {c: v[keep] for c, v in cols.items()}
        labels, bseg = labels[keep], bseg[keep]
    index = rebuild_index(labels, df, lev, bseg, seg, bins.step)
    out = pd.DataFrame(cols, index=index, copy=False)
    return out

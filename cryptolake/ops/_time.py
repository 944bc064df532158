"""The time axis every op shares: checks, int64 ticks, symbol segments, the bar size.

The kernels work on int64 ticks in the index's own unit (no conversion copy for silver's
microseconds), one segment per symbol of a (symbol, time) MultiIndex. `bar_step` is the one
place that decides a frame's bar size: an explicit `freq`, else the archive interval that the
lake records in `df.attrs["interval"]`, else a guess that refuses to be ambiguous.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import grid
from ..kernels import gaps as kg
from ..kernels import resample as kr
from ._frame import OHLC, time_index, times_from_ticks, validate_frame

UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
DAY_NS = 86_400_000_000_000


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
    return times_from_ticks(np.asarray(ticks), lev.dtype, lev.name)


def to_ns(value, what: str) -> int:
    """A duration ('5min', a Timedelta) in nanoseconds; ValueError naming `what` otherwise."""
    try:
        return int(pd.Timedelta(value).value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what}={value!r} is not a duration; use e.g. '5min', '1h', '1D'") from exc


def in_ticks(ns: int, unit_ns: int, what: str, unit: str) -> int:
    """`ns` nanoseconds in ticks of `unit` (`unit_ns` ns each); ValueError if finer than a tick."""
    if ns % unit_ns:
        raise ValueError(f"{what} is finer than the index unit '{unit}'; "
                         f"fix with df.index = df.index.as_unit('ns') (or the matching level)")
    return ns // unit_ns


def _vote(t: np.ndarray, seg: np.ndarray) -> tuple[int, int, int]:
    """(candidate, its count, positive diffs): a candidate voted on a sample of ~4096 diffs,
    confirmed by one exact count; the full two-pass vote only when the sample's candidate is
    not a majority of all diffs. The candidate is the majority diff when there is one."""
    cand = kg.sample_step(t, seg, max(1, len(t) // 4096))
    count, total = kg.count_step(t, seg, cand) if cand > 0 else (0, 0)
    if cand <= 0 or 2 * count <= total:
        cand, count, total = kg.majority_step(t, seg)
    if total == 0:
        raise ValueError("cannot infer the bar size (the most common time step) from fewer "
                         "than two bars per symbol; pass more bars, or freq= where accepted")
    return int(cand), int(count), int(total)


def _diffs(t: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Every positive diff between consecutive rows of one segment."""
    d = np.diff(t)
    inner = np.ones(len(d), dtype=bool)
    inner[seg[1:-1] - 1] = False
    return d[inner & (d > 0)]


def infer_step(t: np.ndarray, seg: np.ndarray) -> int:
    """The most common positive diff within segments (majority vote, with a full `np.unique`
    mode as fallback), ambiguous or not; `bar_step` is the honest version. Raises ValueError
    when there are fewer than two bars."""
    cand, count, total = _vote(t, seg)
    if 2 * count > total:
        return cand
    vals, counts = np.unique(_diffs(t, seg), return_counts=True)
    return int(vals[np.argmax(counts)])


def duration_label(ticks: int, unit: str) -> str:
    """A short name for a duration in ticks of `unit`: '1h', '30s', '90min', '24h'."""
    try:
        name = pd.tseries.frequencies.to_offset(pd.Timedelta(int(ticks), unit=unit)).freqstr
    except ValueError:
        return str(pd.Timedelta(int(ticks), unit=unit))
    return name if name[0].isdigit() else f"1{name}"


def _ambiguous(cands, unit: str, why: str) -> ValueError:
    names = ", ".join(duration_label(c, unit) for c in sorted(cands))
    return ValueError(f"the bar size is ambiguous (candidates {names}): {why}; pass freq=... "
                      "(or read the frame from the lake, which records its interval in "
                      "df.attrs)")


def _runner_up(t: np.ndarray, seg: np.ndarray, mode: int, small: int) -> bool:
    """True when `small` is strictly the most common diff after `mode`. A lone stray bar (a
    04:05 bar in a 1h series) makes two different diffs (5min and 55min) once each: that is
    an off-grid bar, not a sign of 5min bars."""
    vals, counts = np.unique(_diffs(t, seg), return_counts=True)
    rest = counts[(vals != mode) & (vals != small)]
    return int(counts[vals == small][0]) > (int(rest.max()) if len(rest) else 0)


def guess_step(t: np.ndarray, seg: np.ndarray, unit: str) -> int:
    """The bar size of a frame from elsewhere: the most common positive diff, refused when
    ambiguous (see `bar_step`)."""
    mode, count, total = _vote(t, seg)
    if count == total:
        return mode             # every diff is the same: nothing says otherwise
    if 2 * count <= total:
        vals, counts = np.unique(_diffs(t, seg), return_counts=True)
        top = vals[counts == counts.max()]
        if len(top) > 1:
            raise _ambiguous(top, unit, "no diff is a majority and these tie as the most "
                                        "common")
        mode = int(top[0])
    small = int(kr.min_step(t, seg))
    if small < mode and kr.all_multiples(t, seg, small) and _runner_up(t, seg, mode, small):
        raise _ambiguous((small, mode), unit,
                         f"the most common diff is {duration_label(mode, unit)}, but "
                         f"{duration_label(small, unit)} also occurs and divides every diff, so "
                         f"these may be {duration_label(small, unit)} bars with many missing")
    return mode


def interval_ticks(interval: str, unit: str) -> int:
    """The bar size of an archive interval ('1m', '1h', '1w') in ticks of `unit`."""
    what = f"df.attrs[{grid.ATTR!r}]={interval!r}"
    if grid.is_calendar(interval):
        raise ValueError(f"{what}: 1mo bars are calendar months, with no fixed bar size; use a "
                         "calendar rule (df.lake.resample('QS', partial=False)) or pass freq=...")
    try:
        us = grid.step_us(interval)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what}: {exc}; fix the attribute or pass freq=...") from None
    return in_ticks(us * 1000, UNIT_NS[unit], what, unit)


def bar_step(df: pd.DataFrame, t: np.ndarray, seg: np.ndarray, lev: pd.DatetimeIndex,
             freq=None) -> int:
    """The bar size of `df` in ticks of its index unit (`lev.unit`), `t`/`seg` its ticks and
    symbol segments (from `check_frame`).

    In order: an explicit `freq` ('1h', a Timedelta); else `df.attrs["interval"]`, the archive
    interval that frames read from the lake carry ('1m', '1h', '1d', '1w'); else a guess, for
    frames from elsewhere. The guess is the most common positive diff between consecutive bars
    of a symbol, and it is AMBIGUOUS (ValueError naming the candidates: pass freq=...) when

    - a smaller diff that also occurs divides every diff and is the most common diff after the
      guess (mostly 2h with some 1h: they may be 1h bars with many missing; a lone off-grid
      04:05 bar in a 1h series makes 5min and 55min once each, which is no such sign), or
    - the most common diff is not a majority and several diffs tie for most common.

    A frame whose diffs are all exactly 2h is 2h bars (nothing in the data says otherwise).
    `1mo` bars (calendar months) have no fixed size: ValueError.
    """
    if freq is not None:
        ns = to_ns(freq, "freq")
        if ns <= 0:
            raise ValueError(f"freq={freq!r} must be a positive duration like '1min'")
        return in_ticks(ns, UNIT_NS[lev.unit], f"freq={freq!r}", lev.unit)
    interval = df.attrs.get(grid.ATTR)
    if interval is not None:
        return interval_ticks(interval, lev.unit)
    return guess_step(t, seg, lev.unit)


def resolve_freq(df: pd.DataFrame, freq=None):
    """`freq` for an op that takes one: as given, else the bar size of `bar_step` as a
    Timedelta (None for frames of fewer than two rows, which need none)."""
    if freq is not None or len(df) < 2:
        return freq
    interval = df.attrs.get(grid.ATTR)
    if interval is not None:        # no need to read the times
        return pd.Timedelta(interval_ticks(interval, "ns"), unit="ns")
    t, lev, seg = check_frame(df, need=())
    return pd.Timedelta(guess_step(t, seg, lev.unit), unit=lev.unit)


def time_codes(ticks: np.ndarray, step: int | None) -> tuple[np.ndarray, np.ndarray]:
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
    codes, uniq = time_codes(ticks, step)
    return pd.MultiIndex(levels=[like.index.levels[0], as_times(uniq, lev)],
                         codes=[sym_codes, codes], names=like.index.names,
                         verify_integrity=False)



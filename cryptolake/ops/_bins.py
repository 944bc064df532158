"""The bins of `df.resample(rule, offset=offset)`, per symbol segment, as row ranges.

Fixed rules ('15s', '5min', '4h', '1D') are found by a kernel (`kernels.resample.bin_edges`).
Calendar rules ('W', 'W-MON'..'W-SUN', 'ME', 'MS', 'QE', 'QS', 'YE', 'YS', anchored variants
such as 'QE-MAR' and multiples such as '2W') take their edges from pandas' own offsets, once
per symbol, exactly as `DataFrame.resample` builds them (see `calendar_edges`); rows are
mapped to bins with `np.searchsorted`. Both are shared by `resample` and `trades_to_bars`.
"""
from __future__ import annotations

import copy
import datetime
import functools
import warnings

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from .. import grid
from ..kernels import resample as kr
from ..schema import INTERVALS
from ._time import DAY_NS, UNIT_NS, as_times, in_ticks, to_ns

_O = pd.offsets
# pandas closes these on the right and labels them by their last day (`W` is `W-SUN`)
END_RULES = (_O.Week, _O.MonthEnd, _O.QuarterEnd, _O.YearEnd)
START_RULES = (_O.MonthBegin, _O.QuarterBegin, _O.YearBegin)
RULES_HELP = ("use a fixed rule ('15s', '5min', '4h', '1D', '7D') or a calendar rule ('W', "
              "'W-MON'..'W-SUN', 'ME', 'MS', 'QE', 'QS', 'YE', 'YS', or a multiple such as '2W')")


def _cached(fn):
    """`functools.lru_cache` for pure parsers of user arguments, bypassed for an unhashable
    argument (a cached offset object is shared: callers must not mutate it)."""
    cached = functools.lru_cache(maxsize=256, typed=True)(fn)

    @functools.wraps(fn)
    def call(*args):
        try:
            return cached(*args)
        except TypeError as exc:
            if "unhashable" not in str(exc):
                raise
            return fn(*args)
    return call


@_cached
def parse_rule(rule) -> pd.DateOffset:
    """`rule` as a pandas offset: a fixed one (Tick or Day) or a supported calendar one."""
    try:
        off = to_offset(rule)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"rule={rule!r} is not a frequency; {RULES_HELP}") from exc
    if off.n <= 0:
        raise ValueError(f"rule={rule!r} must be a positive duration; {RULES_HELP}")
    if isinstance(off, (_O.Tick, _O.Day)):
        return off
    if type(off) in END_RULES + START_RULES and getattr(off, "weekday", 0) is not None:
        return off
    raise ValueError(f"rule={rule!r} is not supported by df.lake; {RULES_HELP}")


def is_calendar(off: pd.DateOffset) -> bool:
    """True for week, month, quarter and year rules (bins of no fixed length)."""
    return not isinstance(off, (_O.Tick, _O.Day))


@_cached
def rule_ticks(rule, unit: str) -> tuple[int, bool]:
    """A fixed rule ('30s', '5min', '1h', '1D', a Timedelta) in ticks of `unit`; also whether
    it is a pandas Day rule (pandas ignores `offset` for those on a tz-aware index)."""
    off = parse_rule(rule)
    if is_calendar(off):
        raise ValueError(f"rule={rule!r} is a calendar rule; expected a fixed one")
    ns = off.n * DAY_NS if isinstance(off, _O.Day) else int(pd.Timedelta(off).value)
    return in_ticks(ns, UNIT_NS[unit], f"rule={rule!r}", unit), isinstance(off, _O.Day)


def origins(t: np.ndarray, lev: pd.DatetimeIndex, seg: np.ndarray, offset_ticks: int,
            codes: np.ndarray | None = None) -> np.ndarray:
    """pandas' origin='start_day' per segment: midnight (in the index's tz) of its first day,
    plus the offset, as ticks (`codes`: row times are `t[codes]`)."""
    rows = seg[:-1] if codes is None else codes[seg[:-1]]
    first = np.ascontiguousarray(t[rows], dtype=np.int64)
    if _is_utc(lev):            # midnight UTC: a floor to whole days, no pandas call
        day = DAY_NS // UNIT_NS[lev.unit]
        return first - first % day + offset_ticks
    firsts = as_times(first, lev)
    return np.ascontiguousarray(firsts.normalize().asi8 + offset_ticks, dtype=np.int64)


def _is_utc(idx: pd.DatetimeIndex) -> bool:
    return _utc_name(idx.tz)


@_cached
def _utc_name(tz) -> bool:
    return str(tz) in ("UTC", "UTC+00:00", "Etc/UTC")


@_cached
def _offset_ticks(offset, unit: str) -> int:
    return in_ticks(to_ns(offset, "offset"), UNIT_NS[unit], f"offset={offset!r}", unit)


def _rule_and_offset(rule, offset, idx: pd.DatetimeIndex) -> tuple[int, int]:
    step, is_day = rule_ticks(rule, idx.unit)
    off = 0
    if offset is not None:
        off = _offset_ticks(offset, idx.unit)
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


def _anchor_grid(off: pd.DateOffset) -> tuple[str, int, int] | None:
    """(axis, period, residue) of a calendar rule's anchors: days ('D', 7, r: the days with
    d % 7 == r, day 0 = 1970-01-01, a Thursday) or months ('M', 1/3/12, r: month indices with
    m % period == r, month 0 = 1970-01); None for a rule without such a grid."""
    t = type(off)
    if t is _O.Week:
        return "D", 7, (off.weekday - 3) % 7
    if t in (_O.MonthEnd, _O.MonthBegin):
        return "M", 1, 0
    if t in (_O.QuarterEnd, _O.QuarterBegin):
        return "M", 3, (off.startingMonth - 1) % 3
    if t in (_O.YearEnd, _O.YearBegin):
        return "M", 12, off.month - 1
    return None


_EPOCH = datetime.date(1970, 1, 1).toordinal()


def _month_of(day: int) -> int:
    """The month (months since 1970-01) of a day (days since 1970-01-01)."""
    d = datetime.date.fromordinal(day + _EPOCH)
    return (d.year - 1970) * 12 + d.month - 1


def _day_of(month) -> np.ndarray:
    """The first day of each month (months since 1970-01), as days since 1970-01-01."""
    return np.asarray(month, np.int64).astype("datetime64[M]").astype("datetime64[D]") \
        .astype(np.int64)


def _first_day(month: int) -> int:
    """`_day_of` of one month, in plain ints."""
    y, m = divmod(month, 12)
    return datetime.date(1970 + y, m + 1, 1).toordinal() - _EPOCH


def _utc_calendar_edges(f: int, l: int, off: pd.DateOffset, day_ticks: int):
    """`calendar_edges` for a UTC index in integer arithmetic: `f`, `l` the first and last
    days (days since the epoch). End rules: the range starts `n` anchors before `f` (the
    first strictly before it) and ends `n` anchors after `l`; start rules start at the last
    anchor on or before `f`. The anchors between, every `n`th, are the bins' edges."""
    axis, period, r = _anchor_grid(off)
    n, right = off.n, isinstance(off, END_RULES)

    def at_most(x):           # the last anchor <= x
        return x - (x - r) % period

    def at_least(x):          # the first anchor >= x
        return x + (r - x) % period

    if axis == "D":
        start = at_most(f - 1) if right else at_most(f)
        end = at_least(l + 1)
    else:
        mf, ml = _month_of(f), _month_of(l)
        if right:             # anchors are month ends: the last day of month m
            start = at_most(mf - 1)
            end = at_least(ml if _first_day(ml + 1) - 1 > l else ml + 1)
        else:                 # anchors are month starts
            start = at_most(mf)
            end = at_least(ml + 1)
    if right:
        start -= (n - 1) * period
    end += (n - 1) * period
    binner = np.arange(start, end + 1, n * period, dtype=np.int64)
    if axis == "M":
        binner = _day_of(binner + 1) - 1 if right else _day_of(binner)
    binner = binner * day_ticks
    if not right:
        return binner, binner[:-1], False
    return binner + (day_ticks - 1), binner[1:], True


def calendar_edges(first: int, last: int, lev: pd.DatetimeIndex, off: pd.DateOffset):
    """(edges, labels, closed_right) of pandas' bins for a calendar rule over ticks
    [first, last] (pandas' `_get_timestamp_range_edges` and `_adjust_bin_edges`): the range
    starts at the first day rolled back to the rule (start rules, closed left) or one rule
    before it (end rules, closed right); end rules' edges are the last instant of their day
    in wall time. Bin `i` is `[edges[i], edges[i+1])` (closed left) or `(edges[i],
    edges[i+1]]` (closed right), labelled `labels[i]`."""
    if _is_utc(lev) and _anchor_grid(off) is not None:
        day = DAY_NS // UNIT_NS[lev.unit]
        return _utc_calendar_edges(first // day, last // day, off, day)
    return pandas_calendar_edges(first, last, lev, off)


def pandas_calendar_edges(first: int, last: int, lev: pd.DatetimeIndex, off: pd.DateOffset):
    """`calendar_edges` by pandas' own offsets and `date_range` (any time zone)."""
    f, l = as_times(np.array([first, last], np.int64), lev).normalize()
    right = isinstance(off, END_RULES)
    start = pd.Timestamp(f - off) if right else pd.Timestamp(off.rollback(f))
    binner = pd.date_range(freq=off, start=start, end=pd.Timestamp(l + off), tz=lev.tz,
                           ambiguous=True, nonexistent="shift_forward", unit=lev.unit)
    if not right:
        return binner.asi8, binner.asi8[:-1], False
    wall = binner.tz_localize(None)
    day, tick = (pd.Timedelta(v, unit=u).as_unit(wall.unit) for v, u in ((1, "D"), (1, wall.unit)))
    wall = (wall + day - tick).tz_localize(binner.tz)
    assert wall.unit == lev.unit
    return wall.asi8, binner.asi8[1:], True


def calendar_bins(t: np.ndarray, lev: pd.DatetimeIndex, seg: np.ndarray, off: pd.DateOffset,
                  segnb: np.ndarray):
    """Non-empty calendar bins per segment of sorted ticks `t`: (first row of each bin,
    labels, lo, hi) with every bin spanning ticks [lo, hi); fills `segnb` like `bin_edges`."""
    if len(seg) == 2:           # one series: no bookkeeping per segment
        first, last = int(t[0]), int(t[-1])
        if _is_utc(lev):
            day_ticks = DAY_NS // UNIT_NS[lev.unit]
            f, l = first - first % day_ticks, last - last % day_ticks
        else:
            f, l = as_times(np.array([first, last], np.int64), lev).normalize().asi8.tolist()
        edges, labs, right = calendar_edges(f, l, lev, off)
        rows = np.searchsorted(t, edges, side="right" if right else "left").astype(np.int64)
        assert rows[0] == 0 and rows[-1] == len(t), "calendar edges must cover every row"
        used = np.flatnonzero(rows[1:] > rows[:-1])
        segnb[0], segnb[1] = 0, len(used)
        return rows[used], labs[used], edges[used] + right, edges[used + 1] + right
    firsts, labels, lo, hi = [], [], [], []
    nb = 0
    full = np.flatnonzero(np.diff(seg) > 0)
    # the edges depend on the first and last days only: one pandas call per distinct pair
    ends = np.concatenate((t[seg[full]], t[seg[full + 1] - 1]))
    if _is_utc(lev):
        day_ticks = DAY_NS // UNIT_NS[lev.unit]
        days = ends - ends % day_ticks
    else:
        days = as_times(ends, lev).normalize().asi8
    day = dict(zip(full.tolist(), zip(days[:len(full)].tolist(), days[len(full):].tolist())))
    cache: dict = {}
    for s in range(len(seg) - 1):
        segnb[s] = nb
        a, z = int(seg[s]), int(seg[s + 1])
        if a == z:
            continue
        if day[s] not in cache:
            cache[day[s]] = calendar_edges(*day[s], lev, off)
        edges, labs, right = cache[day[s]]
        rows = a + np.searchsorted(t[a:z], edges, side="right" if right else "left")
        assert rows[0] == a and rows[-1] == z, "calendar edges must cover every row"
        used = np.flatnonzero(rows[1:] > rows[:-1])
        firsts.append(rows[used])
        labels.append(labs[used])
        lo.append(edges[used] + right)
        hi.append(edges[used + 1] + right)
        nb += len(used)
    segnb[len(seg) - 1] = nb
    if not firsts:
        return (np.zeros(0, np.int64),) * 4
    return tuple(np.concatenate(x).astype(np.int64) for x in (firsts, labels, lo, hi))


def _gather(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    out = np.empty(len(codes), np.int64)
    kr.gather(values, codes, out)
    return out


class Bins:
    """The non-empty bins of `df.resample(rule, offset=offset)` per segment of ticks `t`, and
    the memory for their outputs: `starts`, `labels` and every output column are rows of one
    allocation (fresh pages fault once per allocation's pages, not per column).

    `starts[:nb + 1]` first row of each bin (then len(t)); `labels[:nb]` bin labels (open
    ticks for fixed and start rules, the last day for end rules, as pandas labels them);
    `segnb[s]` first bin of segment `s`; `column()` hands out the next output row; `step` is
    the rule in ticks (None for a calendar rule); `extent()` each bin's span.
    """

    def __init__(self, t: np.ndarray, idx: pd.DatetimeIndex, seg: np.ndarray, rule, offset,
                 ncols: int, codes: np.ndarray | None = None):
        """`codes`: `t` is a MultiIndex level's ticks and row `i`'s time is `t[codes[i]]`."""
        self.rule = parse_rule(rule)
        self.segnb = np.empty(len(seg), np.int64)
        if is_calendar(self.rule):
            if offset is not None:
                raise ValueError(f"offset={offset!r} with the calendar rule {rule!r}: pandas "
                                 "ignores it for some calendar rules, so df.lake refuses it; "
                                 "drop offset= (or use a fixed rule such as '24h' with it)")
            self.step = None
            if codes is not None:       # a MultiIndex level's ticks: every row's time
                t = _gather(t, codes)
            first, labels, self._lo, self._hi = calendar_bins(t, idx, seg, self.rule,
                                                              self.segnb)
            nb = len(first)
            self._alloc(ncols, nb)
            self.block[0, :nb] = first.view(np.float64)
            self.block[0, nb:nb + 1] = np.array([seg[-1]], np.int64).view(np.float64)
            self.block[1, :nb] = labels.view(np.float64)
        else:
            self.step, off = _rule_and_offset(rule, offset, idx)
            nb = self._fixed(t, idx, seg, off, ncols, codes)
        self.starts = self.block[0].view(np.int64)[:nb + 1]
        self.labels = self.block[1].view(np.int64)[:nb]
        self.nb = nb
        self._next = 2

    def _alloc(self, ncols: int, bound: int) -> None:
        self.block = np.empty((ncols + 2, bound + 1))

    def _fixed(self, t, idx, seg, off, ncols, codes) -> int:
        # Size the outputs by a bound on the bin count (a segment spanning `d` ticks has at
        # most d // step + 2 bins, and no more bins than rows) and find the bins in one call;
        # np.empty pages that stay unused are never touched.
        if codes is None and len(seg) == 2 and _is_utc(idx):
            # one series in UTC (the common case): the origin and the bound in plain ints
            first, n = int(t[0]), len(t)
            day = DAY_NS // UNIT_NS[idx.unit]
            origin = np.array([first - first % day + off], np.int64)
            bound = min((int(t[n - 1]) - first) // self.step + 2, n)
        elif len(seg) > 1:
            origin = origins(t, idx, seg, off, codes)
            first, last = seg[:-1], seg[1:] - 1
            if codes is not None:
                first, last = codes[first], codes[last]
            span = t[last] - t[first]
            bound = int(np.minimum(span // self.step + 2, np.diff(seg)).sum())
        else:
            origin, bound = np.zeros(0, np.int64), 0
        self._alloc(ncols, bound)
        starts = self.block[0].view(np.int64)
        labels = self.block[1].view(np.int64)
        if codes is None:
            return kr.bin_edges(t, seg, origin, self.step, starts, labels, self.segnb, True)
        return kr.bin_edges_at(t, codes, seg, origin, self.step, starts, labels, self.segnb,
                               True)

    def column(self, dtype=np.float64) -> np.ndarray:
        """The next free output row (float64, or an int64 view of it)."""
        row = self.block[self._next, :self.nb]
        self._next += 1
        return row if np.dtype(dtype) == np.float64 else row.view(dtype)

    @property
    def bseg(self) -> np.ndarray:
        """The segment of every bin."""
        return np.repeat(np.arange(len(self.segnb) - 1), np.diff(self.segnb))

    def extent(self) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi): every bin spans ticks [lo, hi)."""
        if self.step is None:
            return self._lo, self._hi
        return self.labels, self.labels + self.step

    def interval(self, unit: str) -> str | None:
        """The archive interval ('4h', '1d', '1mo') whose bars these bins are, or None: the
        rule's length is an interval's and every label opens a bar of its grid."""
        if self.step is None:
            monthly = type(self.rule) is _O.MonthBegin and self.rule.n == 1
            return "1mo" if monthly else None
        name = _interval_of(self.step * UNIT_NS[unit])
        if name is None:
            return None
        # labels are a segment's first label plus multiples of the step: check the firsts
        if len(self.segnb) == 2:        # one segment: plain ints, no numpy
            if not self.nb:
                return name
            ns = int(self.labels[0]) * UNIT_NS[unit]
            on = ns % 1000 == 0 and (ns // 1000 - grid.origin_us(name)) % grid.step_us(name) == 0
            return name if on else None
        ns_labels = self.labels[self.segnb[:-1][np.diff(self.segnb) > 0]] * UNIT_NS[unit]
        if (ns_labels % 1000).any():
            return None
        return name if grid.on_grid(ns_labels // 1000, name).all() else None


@functools.lru_cache(maxsize=64)
def _interval_of(ns: int) -> str | None:
    """The fixed archive interval ('1m', '4h', '1d', '1w') that is `ns` long, or None."""
    if ns % 1000:
        return None
    for name in INTERVALS:
        if not grid.is_calendar(name) and grid.step_us(name) * 1000 == ns:
            return name
    return None


def output_attrs(attrs: dict, interval: str | None) -> dict:
    """A copy of a frame's `attrs` for an op's output: `interval` set to the output's archive
    interval, or dropped when it is none."""
    out = {k: copy.deepcopy(v) for k, v in attrs.items() if k != grid.ATTR}
    if interval is not None:
        out[grid.ATTR] = interval
    return out

"""Gaps of a bar series and filling them: pandas in -> `kernels.gaps` -> pandas out."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import grid, quality
from ..kernels import gaps as kg
from ._frame import OHLC, SUM_COLUMNS
from ._time import UNIT_NS as _UNIT_NS
from ._time import as_times, bar_step, check_frame, rebuild_index


def _origin(t: np.ndarray, step: int, lev, attrs) -> int:
    """A grid point: the lake interval's own origin, else the phase most bars share."""
    interval = (attrs or {}).get(grid.ATTR)
    if interval and not grid.is_calendar(interval) and grid.step_us(interval) * 1000 == step * _UNIT_NS[lev.unit]:
        return grid.origin_us(interval) * 1000 // _UNIT_NS[lev.unit]
    r = t[:: max(1, len(t) // 4096)] % step
    vals, counts = np.unique(r, return_counts=True)
    return int(vals[np.argmax(counts)]) if len(vals) else 0


def gaps(df: pd.DataFrame, freq=None) -> pd.DataFrame:
    """One row per maximal run of missing bars: `start`, `end` (open times of the first and last
    missing bar), `missing` (int64 bar count) and `duration` (`missing * freq`, a Timedelta).

    The bar size is `freq`, else the interval a frame read from the lake carries in
    `df.attrs["interval"]` (calendar months included), else the most common diff. Bars off the
    grid (a 04:05 bar in a 1h series) are skipped: they never start, end or bend a run. With a
    (symbol, time) MultiIndex the runs are per symbol and a leading `symbol` column says whose.
    Present on-grid rows plus `missing.sum()` equal the full grid from the first to the last
    on-grid bar. The runs come from the one gap engine, `cryptolake.quality.find_runs`.
    """
    t, lev, seg = check_frame(df, need=())
    n = len(t)
    calendar = freq is None and grid.is_calendar(df.attrs.get(grid.ATTR) or "")
    if calendar:      # months: runs in month numbers, then back to the index's ticks
        unit = _UNIT_NS[lev.unit]
        us = t * unit // 1000
        on = grid.on_grid(us, "1mo")                 # off-grid rows are left out
        kept = np.r_[0, np.cumsum(on)][seg]
        months = us[on].astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
        m0, m1, missing, gseg, _ = quality.find_runs(months, kept, 1, 0)   # segments as before
        to_ticks = lambda m: m.astype("datetime64[M]").astype("datetime64[us]").astype(np.int64) * 1000 // unit  # noqa: E731
        start, end, after = to_ticks(m0), to_ticks(m1), to_ticks(m1 + 1)
        dur = pd.to_timedelta(after - start, unit=lev.unit).as_unit(lev.unit)
    else:
        step = bar_step(df, t, seg, lev, freq) if n > 1 else 1
        origin = _origin(t, step, lev, df.attrs) if n else 0
        start, end, missing, gseg, _ = quality.find_runs(t, seg, step, origin)
        dur = pd.to_timedelta(missing * step, unit=lev.unit).as_unit(lev.unit)
    lev = lev.rename(None)
    cols = {"start": as_times(start, lev), "end": as_times(end, lev), "missing": missing,
            "duration": dur}
    if isinstance(df.index, pd.MultiIndex):
        codes = np.asarray(df.index.codes[0])[seg[:-1]][gseg]
        sym = df.index.levels[0].take(codes)
        cols = {"symbol": np.asarray(sym)} | cols
    return pd.DataFrame(cols)


def fill_gaps(df: pd.DataFrame, freq=None) -> pd.DataFrame:
    """Insert every missing bar of the grid (per symbol on a MultiIndex) and add a bool column
    `is_filled`.

    An inserted bar carries the previous close: open = high = low = close = that close;
    volumes and `trades` are 0; datetime columns (`close_time`) move with the bar; every other
    column is carried forward from the previous bar (`ffill`). Present rows are unchanged.
    """
    t, lev, seg = check_frame(df, need=())
    if len(t) < 2:
        out = df.copy()
        out["is_filled"] = False
        return out
    step = bar_step(df, t, seg, lev, freq)
    m = kg.grid_size(t, seg, step)
    out_t = np.empty(m, np.int64)
    src = np.empty(m, np.int64)
    filled = np.empty(m, np.bool_)
    kg.fill_grid(t, seg, step, out_t, src, filled)
    close = None
    if "close" in df.columns:
        close = np.ascontiguousarray(df["close"].to_numpy(np.float64, copy=False))
    cols = {}
    for col in df.columns:
        cols[col] = _fill_column(df[col], col, close, t, lev.unit, out_t, src, filled)
    cols["is_filled"] = filled
    seg_of_row = None
    if isinstance(df.index, pd.MultiIndex):
        seg_of_row = np.repeat(np.arange(len(seg) - 1), np.diff(seg))[src]
    index = rebuild_index(out_t, df, lev, seg_of_row, seg, step)
    return pd.DataFrame(cols, index=index, copy=False)


def _fill_column(s: pd.Series, col: str, close, t, t_unit: str, out_t, src, filled):
    dt = s.dtype
    numeric = pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_bool_dtype(dt)
    if col in SUM_COLUMNS and numeric:
        x = s.to_numpy(copy=False)
        if x.dtype.kind not in "iuf":
            x = s.to_numpy(np.float64, copy=False, na_value=np.nan)
        out = np.empty(len(src), x.dtype)
        kg.take_or_const(np.ascontiguousarray(x), src, filled, x.dtype.type(0), out)
        return out
    if col in OHLC and close is not None and numeric:
        out = np.empty(len(src), np.float64)
        x = np.ascontiguousarray(s.to_numpy(np.float64, copy=False, na_value=np.nan))
        kg.take_or_other(x, close, src, filled, out)
        return out
    if isinstance(dt, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dt):
        arr = s.array
        x = np.asarray(arr.asi8)
        a, b = _UNIT_NS[t_unit], _UNIT_NS[arr.unit]   # index ticks -> column ticks
        out = np.empty(len(src), np.int64)
        if a == b:
            kg.take_shifted(x, t, out_t, src, out)
        else:
            kg.take_shifted(x, t * a // b, out_t * a // b, src, out)
        res = pd.DatetimeIndex(out.view(f"M8[{arr.unit}]"),
                               dtype=pd.DatetimeTZDtype(unit=arr.unit, tz="UTC"))
        return res.tz_convert(arr.tz).array if arr.tz is not None else res.tz_localize(None).array
    return s.take(src).to_numpy() if not isinstance(dt, pd.CategoricalDtype) \
        else s.take(src).array

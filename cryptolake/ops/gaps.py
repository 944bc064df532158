"""Gaps of a bar series and filling them: pandas in -> `kernels.gaps` -> pandas out."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..kernels import gaps as kg
from ._frame import OHLC
from .resample import (_UNIT_NS, SUM_COLUMNS, _in_ticks, _to_ns, as_times, check_frame,
                       infer_step, rebuild_index)


def _step(freq, t, seg, lev: pd.DatetimeIndex) -> int:
    if freq is None:
        return infer_step(t, seg)
    ns = _to_ns(freq, "freq")
    if ns <= 0:
        raise ValueError(f"freq={freq!r} must be a positive duration like '1min'")
    return _in_ticks(ns, _UNIT_NS[lev.unit], f"freq={freq!r}", lev.unit)


def gaps(df: pd.DataFrame, freq=None) -> pd.DataFrame:
    """One row per maximal run of missing bars: `start`, `end` (open times of the first and last
    missing bar), `missing` (int64 bar count) and `duration` (`missing * freq`, a Timedelta).

    `freq=None` infers the bar size as the most common diff. With a (symbol, time) MultiIndex
    the runs are per symbol and a leading `symbol` column says whose. Present rows plus
    `missing.sum()` equal the full grid from the first to the last bar.
    """
    t, lev, seg = check_frame(df, need=())
    n = len(t)
    start, end, missing, gseg = (np.empty(n, np.int64) for _ in range(4))
    k = -1
    if freq is None and n > 1:
        # infer_step's sampled guess, confirmed by the count made while finding the runs
        step = int(kg.sample_step(t, seg, max(1, n // 4096)))
        if step > 0:
            k, count, total = kg.gap_runs_counted(t, seg, step, start, end, missing, gseg)
            if 2 * count <= total:
                k = -1
    if k < 0:
        step = _step(freq, t, seg, lev) if n > 1 else 1
        k = kg.gap_runs(t, seg, step, start, end, missing, gseg)
    lev = lev.rename(None)
    cols = {
        "start": as_times(start[:k], lev),
        "end": as_times(end[:k], lev),
        "missing": missing[:k],
        "duration": pd.to_timedelta(missing[:k] * step, unit=lev.unit).as_unit(lev.unit),
    }
    if isinstance(df.index, pd.MultiIndex):
        codes = np.asarray(df.index.codes[0])[seg[:-1]][gseg[:k]]
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
    step = _step(freq, t, seg, lev)
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

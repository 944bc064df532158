"""Gaps of a bar series and filling them: pandas in -> `kernels.gaps` -> pandas out."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..kernels import gaps as kg
from ._frame import OHLC, time_index
from .resample import (SUM_COLUMNS, _in_ticks, _to_ns, check_frame, frame_ticks, infer_step,
                       rebuild_index, segments)


def _step(df: pd.DataFrame, freq, t, seg) -> int:
    idx = time_index(df)
    if freq is None:
        return infer_step(t, seg)
    ns = _to_ns(freq, "freq")
    if ns <= 0:
        raise ValueError(f"freq={freq!r} must be a positive duration like '1min'")
    return _in_ticks(ns, frame_ticks(idx)[1], f"freq={freq!r}", idx.unit)


def gaps(df: pd.DataFrame, freq=None) -> pd.DataFrame:
    """One row per maximal run of missing bars: `start`, `end` (open times of the first and last
    missing bar), `missing` (int64 bar count) and `duration` (`missing * freq`, a Timedelta).

    `freq=None` infers the bar size as the most common diff. With a (symbol, time) MultiIndex
    the runs are per symbol and a leading `symbol` column says whose. Present rows plus
    `missing.sum()` equal the full grid from the first to the last bar.
    """
    check_frame(df, need=())
    idx = time_index(df)
    t, unit_ns = frame_ticks(idx)
    seg = segments(df)
    step = _step(df, freq, t, seg) if len(t) > 1 else 1
    n = len(t)
    start, end, missing, gseg = (np.empty(n, np.int64) for _ in range(4))
    k = kg.gap_runs(t, seg, step, start, end, missing, gseg)
    dtype = pd.DatetimeTZDtype(unit=idx.unit, tz="UTC")
    cols = {
        "start": pd.DatetimeIndex(start[:k].view(f"M8[{idx.unit}]"), dtype=dtype).tz_convert(idx.tz),
        "end": pd.DatetimeIndex(end[:k].view(f"M8[{idx.unit}]"), dtype=dtype).tz_convert(idx.tz),
        "missing": missing[:k],
        "duration": pd.to_timedelta(missing[:k] * step, unit=idx.unit).as_unit(idx.unit),
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
    check_frame(df, need=())
    idx = time_index(df)
    t, _ = frame_ticks(idx)
    seg = segments(df)
    if len(t) < 2:
        out = df.copy()
        out["is_filled"] = False
        return out
    step = _step(df, freq, t, seg)
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
        cols[col] = _fill_column(df[col], col, close, t, out_t, src, filled)
    cols["is_filled"] = filled
    seg_of_row = None
    if isinstance(df.index, pd.MultiIndex):
        seg_of_row = np.repeat(np.arange(len(seg) - 1), np.diff(seg))[src]
    return pd.DataFrame(cols, index=rebuild_index(out_t, df, seg_of_row, seg), copy=False)


def _fill_column(s: pd.Series, col: str, close, t, out_t, src, filled):
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
        tu = _unit_ratio(s, arr.unit)
        out = np.empty(len(src), np.int64)
        kg.take_shifted(x, t * tu[0] // tu[1], out_t * tu[0] // tu[1], src, out)
        res = pd.DatetimeIndex(out.view(f"M8[{arr.unit}]"),
                               dtype=pd.DatetimeTZDtype(unit=arr.unit, tz="UTC"))
        return res.tz_convert(arr.tz).array if arr.tz is not None else res.tz_localize(None).array
    return s.take(src).to_numpy() if not isinstance(dt, pd.CategoricalDtype) \
        else s.take(src).array


def _unit_ratio(s, unit):
    """(num, den) turning index ticks into the column's ticks."""
    from .resample import _UNIT_NS
    idx_unit = s.index.get_level_values(-1).unit
    a, b = _UNIT_NS[idx_unit], _UNIT_NS[unit]
    return (a // b, 1) if a >= b else (1, b // a)

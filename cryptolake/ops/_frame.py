"""Validation and array extraction shared by every op: pandas in, numpy out, errors that say
how to fix the frame."""
from __future__ import annotations

import numpy as np
import pandas as pd

OHLC = ("open", "high", "low", "close")
VOLUME_COLUMNS = ("volume", "quote_volume", "base_volume", "taker_buy_volume",
                  "taker_buy_quote_volume", "taker_buy_base_volume")
SUM_COLUMNS = VOLUME_COLUMNS + ("trades",)      # summed by resample, zero in filled bars


def time_index(df: pd.DataFrame | pd.Series) -> pd.DatetimeIndex:
    """The frame's time axis: its DatetimeIndex, or the time level of a (symbol, time) MultiIndex."""
    idx = df.index
    if isinstance(idx, pd.MultiIndex):
        idx = idx.get_level_values(-1)
    if not isinstance(idx, pd.DatetimeIndex):
        raise ValueError(
            f"df.lake needs a DatetimeIndex, got {type(idx).__name__}; "
            "fix with df.set_index('open_time') or df.index = pd.to_datetime(df.index, utc=True)")
    return idx


def validate_frame(df: pd.DataFrame, need=OHLC, *, monotonic: bool = True,
                   tz_aware: bool = True) -> None:
    """Raise ValueError unless `df` has a tz-aware, increasing DatetimeIndex and columns `need`.

    A (symbol, time) MultiIndex is checked per symbol for monotonicity.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"expected a DataFrame, got {type(df).__name__}")
    idx = time_index(df)
    if tz_aware and idx.tz is None:
        raise ValueError("the time index is naive (no time zone); cryptolake works in UTC: "
                         "fix with df.tz_localize('UTC') (or df.index = df.index.tz_localize('UTC'))")
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}; need {list(need)}, have {list(df.columns)}")
    if monotonic:
        if isinstance(df.index, pd.MultiIndex):
            codes = df.index.codes[0]
            t = idx.asi8
            same = codes[1:] == codes[:-1]
            sym_sorted = np.all(codes[1:] >= codes[:-1]) or len(codes) < 2
            ok = sym_sorted and not np.any(same & (t[1:] <= t[:-1]))
        else:
            ok = idx.is_monotonic_increasing and idx.is_unique
        if not ok:
            raise ValueError("the time index is not strictly increasing (unsorted or duplicated); "
                             "fix with df.sort_index() and df[~df.index.duplicated()]")


def time_ns(idx: pd.DatetimeIndex) -> np.ndarray:
    """int64 nanoseconds since the epoch for any datetime unit (s, ms, us, ns), without a copy
    when the index is already in ns."""
    return idx.as_unit("ns").asi8


def values(df: pd.DataFrame, col: str) -> np.ndarray:
    """A column as a contiguous float64 array (no copy when it already is one)."""
    return np.ascontiguousarray(df[col].to_numpy(dtype=np.float64, copy=False))

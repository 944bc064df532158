"""Pandas objects around float64 arrays an op has just computed, built without pandas' generic
constructors (which re-check dtype, shape and hashability, and in pandas 3 turn a list of
column names into an Arrow string array on every call: ~100 us for a three-column frame,
against a ~400 us kernel on 100k rows).

The fast path uses pandas internals (`BlockManager`, `new_block`, `_from_mgr`), which pandas
itself uses the same way; when they are missing or refuse (another pandas version), the public
constructors are used instead, with the same result. The arrays are wrapped, never copied: the
caller hands over arrays nobody else holds.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

try:  # pandas >= 2.1 internals; anything else falls back to the public constructors
    from pandas._libs.internals import BlockPlacement
    from pandas.core.internals import BlockManager, SingleBlockManager

    FAST = hasattr(pd.Series, "_from_mgr") and hasattr(pd.DataFrame, "_from_mgr")
except ImportError:  # pragma: no cover - depends on the pandas version
    FAST = False
_NAME_SLOT = "_name" in getattr(pd.Series, "_metadata", ())   # Series keeps its name there


def _block(values, placement, ndim):
    """`new_block` for float64 values, with the block class looked up once."""
    global _FLOAT_BLOCK
    if _FLOAT_BLOCK is None:
        from pandas.core.internals.blocks import get_block_type
        _FLOAT_BLOCK = get_block_type(np.dtype(np.float64))
    return _FLOAT_BLOCK(values, ndim=ndim, placement=placement, refs=None)


_FLOAT_BLOCK = None


@functools.lru_cache(maxsize=512)
def column_index(columns: tuple) -> pd.Index:
    """The (immutable, shareable) column Index for these names, built once per process."""
    return pd.Index(list(columns))


def _usable(arr, n: int) -> bool:
    return isinstance(arr, np.ndarray) and arr.dtype == np.float64 and arr.ndim == 1 \
        and arr.shape[0] == n


def series(arr: np.ndarray, index: pd.Index, name) -> pd.Series:
    """`pd.Series(arr, index=index, name=name, copy=False)`, faster."""
    n = len(index)
    if FAST and _usable(arr, n):
        try:
            mgr = SingleBlockManager(_block(arr, BlockPlacement(slice(0, n)), ndim=1), index)
            s = pd.Series._from_mgr(mgr, mgr.axes)
            if _NAME_SLOT and isinstance(name, str):
                object.__setattr__(s, "_name", name)     # what the `name` setter stores
            else:
                s.name = name
            return s
        except Exception:  # noqa: BLE001  (internals changed: take the public path)
            pass
    return pd.Series(arr, index=index, name=name, copy=False)


def frame(arrs, index: pd.Index, columns) -> pd.DataFrame:
    """`pd.DataFrame(dict(zip(columns, arrs)), index=index, copy=False)` (one block per
    column, no copy), faster. `columns` must be distinct."""
    columns = tuple(columns)
    n = len(index)
    cols = column_index(columns)
    if FAST and len(arrs) == len(columns) and all(_usable(a, n) for a in arrs):
        try:
            blocks = tuple(_block(a.reshape(1, n), BlockPlacement(slice(i, i + 1)), ndim=2)
                           for i, a in enumerate(arrs))
            mgr = BlockManager(blocks, [cols, index], verify_integrity=False)
            return pd.DataFrame._from_mgr(mgr, mgr.axes)
        except Exception:  # noqa: BLE001
            pass
    return pd.DataFrame(dict(zip(columns, arrs, strict=True)), index=index, copy=False)


def append_columns(df: pd.DataFrame, new: dict) -> pd.DataFrame:
    """`pd.concat([df, pd.DataFrame(new, index=df.index)], axis=1)` for new float64 columns
    whose names are not in df: df's blocks shared copy-on-write (as concat shares them), one
    block per new column, the combined column Index built once per set of names (concat
    rebuilds an Arrow string Index on every call: ~20 ms)."""
    n = len(df)
    arrs = list(new.values())
    if FAST and new and all(_usable(a, n) for a in arrs):
        try:
            cols = column_index(tuple(df.columns) + tuple(new))
            base = df._mgr.copy(deep=False)              # shares df's data, copy-on-write
            m = len(df.columns)
            blocks = tuple(base.blocks) + tuple(
                _block(a.reshape(1, n), BlockPlacement(slice(m + i, m + i + 1)), ndim=2)
                for i, a in enumerate(arrs))
            mgr = BlockManager(blocks, [cols, df.index], verify_integrity=False)
            out = pd.DataFrame._from_mgr(mgr, mgr.axes)
            out.attrs = dict(df.attrs)
            return out
        except Exception:  # noqa: BLE001
            pass
    return pd.concat([df, pd.DataFrame(new, index=df.index, copy=False)], axis=1)

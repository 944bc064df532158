"""Validation and array extraction shared by every op: pandas in, numpy out, errors that say
how to fix the frame."""
from __future__ import annotations

import functools
import weakref

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


# ------------------------------------------------------------ cheap frame assembly
# pandas' public constructors re-validate what an op already knows (dtypes, lengths, an
# index it built itself): ~50 us for a DatetimeIndex and ~100 us for a five-column frame,
# most of a small resample's time. The helpers below use pandas' own no-check constructors
# and fall back to the public ones where this pandas lacks them or builds something else
# (checked once, on first use, against the public path).

def _public_times(ticks: np.ndarray, dtype, name) -> pd.DatetimeIndex:
    unit = dtype.unit if isinstance(dtype, pd.DatetimeTZDtype) else np.datetime_data(dtype)[0]
    utc = pd.DatetimeIndex(ticks.view(f"M8[{unit}]"), dtype=pd.DatetimeTZDtype(unit, "UTC"),
                           name=name)
    return utc.tz_convert(getattr(dtype, "tz", None))


def _public_frame(names, blocks, index) -> pd.DataFrame:
    cols: dict = {}
    for values, pos in blocks:
        if len(pos) == 1 and getattr(values, "ndim", 1) == 1:
            cols[pos[0]] = values
        else:
            cols.update(zip(pos, values))
    return pd.DataFrame({names[i]: cols[i] for i in range(len(names))}, index=index, copy=False)


_INTERNALS: dict = {}


def _internals() -> dict:
    """pandas' no-check constructors, imported once (they are not public API)."""
    if not _INTERNALS:
        from pandas._libs.internals import BlockPlacement
        from pandas.core.arrays import DatetimeArray
        from pandas.core.internals.blocks import ensure_block_shape, new_block_2d
        from pandas.core.internals.managers import BlockManager
        _INTERNALS.update(BlockPlacement=BlockPlacement, DatetimeArray=DatetimeArray,
                          ensure_block_shape=ensure_block_shape, new_block_2d=new_block_2d,
                          BlockManager=BlockManager)
    return _INTERNALS


def _fast_times(ticks: np.ndarray, dtype, name) -> pd.DatetimeIndex:
    unit = dtype.unit if isinstance(dtype, pd.DatetimeTZDtype) else np.datetime_data(dtype)[0]
    arr = _internals()["DatetimeArray"]._simple_new(ticks.view(f"M8[{unit}]"), dtype=dtype)
    return pd.DatetimeIndex._simple_new(arr, name=name)


def _fast_frame(names, blocks, index) -> pd.DataFrame:
    pi = _internals()
    BlockPlacement, BlockManager = pi["BlockPlacement"], pi["BlockManager"]
    ensure_block_shape, new_block_2d = pi["ensure_block_shape"], pi["new_block_2d"]
    made = []
    for values, pos in blocks:
        if values.ndim == 1:
            values = ensure_block_shape(values, 2)
        place = BlockPlacement(np.asarray(pos, dtype=np.intp))
        made.append(new_block_2d(values, placement=place))
    mgr = BlockManager(tuple(made), [_columns(tuple(names)), index], verify_integrity=False)
    return pd.DataFrame._from_mgr(mgr, axes=mgr.axes)


@functools.lru_cache(maxsize=256)
def _columns(names: tuple) -> pd.Index:
    """The column Index that `pd.DataFrame(dict)` builds for these keys."""
    return pd.DataFrame(dict.fromkeys(names, ())).columns


_FAST: dict = {}


def _pick(kind: str):
    """The fast helper `kind` if it builds exactly what the public one does, else the public."""
    if kind not in _FAST:
        fast, public = {"times": (_fast_times, _public_times),
                        "frame": (_fast_frame, _public_frame)}[kind]
        try:
            ticks = np.array([0, 3_600_000_000], np.int64)
            ok = True
            if kind == "times":
                for dtype in (pd.DatetimeTZDtype("us", "UTC"),
                              pd.DatetimeTZDtype("ns", "Asia/Tokyo"), np.dtype("M8[ms]")):
                    a, b = fast(ticks, dtype, "t"), public(ticks, dtype, "t")
                    ok &= a.equals(b) and a.dtype == b.dtype and a.name == b.name
            else:
                idx = _public_times(ticks, pd.DatetimeTZDtype("us", "UTC"), "t")
                store = np.arange(12.0).reshape(6, 2)
                blocks = [(store[1:3], [4, 1]), (store[3:5].view(np.int64), [0, 3]),
                          (np.array([True, False]), [2]), (idx.array, [5]),
                          (np.array([7.0, 8.0]), [6])]
                names = ["a", "b", "c", "d", "e", "f", "g"]
                a, b = fast(names, blocks, idx), public(names, blocks, idx)
                pd.testing.assert_frame_equal(a, b, check_exact=True)
                ok &= list(a.dtypes) == list(b.dtypes)
            _FAST[kind] = fast if ok else public
        except Exception:      # noqa: BLE001 - any failure means: use the public constructor
            _FAST[kind] = public
    return _FAST[kind]


def times_from_ticks(ticks: np.ndarray, dtype, name=None) -> pd.DatetimeIndex:
    """A DatetimeIndex of `dtype` (`M8[unit]` or `DatetimeTZDtype`) from int64 ticks of its
    unit (UTC instants), sharing their memory, without pandas' checks."""
    if ticks.dtype != np.int64:
        raise ValueError(f"ticks must be int64, got {ticks.dtype}")
    return _pick("times")(ticks, dtype, name)


def frame_from_blocks(names, blocks, index: pd.Index) -> pd.DataFrame:
    """A frame with columns `names` (unique) on `index`, from `blocks`: pairs (values,
    positions), `values` a 2-D numpy array whose rows are the columns at `positions` (any
    order), or a 1-D numpy/extension array for one position; each position once. Equal to
    `pd.DataFrame({...}, index=index, copy=False)` built column by column, without pandas'
    checks and without a copy (a 2-D group stays one pandas block)."""
    return _pick("frame")(list(names), blocks, index)


def frame_from_arrays(names, arrays, index: pd.Index) -> pd.DataFrame:
    """`pd.DataFrame(dict(zip(names, arrays)), index=index, copy=False)` for unique `names`
    and 1-D arrays (numpy or extension arrays) of `len(index)`, without a copy or checks."""
    return frame_from_blocks(names, [(a, [i]) for i, a in enumerate(arrays)], index)


def column_arrays(df: pd.DataFrame) -> list:
    """The frame's columns as stored (numpy arrays or extension arrays), read-only views."""
    get = getattr(df, "_get_column_array", None)
    if get is None:
        return [df.iloc[:, i]._values for i in range(df.shape[1])]
    return [get(i) for i in range(df.shape[1])]


# ------------------------------------------------------------ Series and appended columns
# The indicators' outputs: float64 arrays an op has just computed, wrapped (never copied) in a
# Series, or appended to the input frame, on pandas internals (`SingleBlockManager`,
# `BlockManager`, `_from_mgr`), which pandas itself uses the same way; when they are missing
# or refuse, the public constructors give the same result.
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


def append_columns(df: pd.DataFrame, new: dict) -> pd.DataFrame:
    """`pd.concat([df, pd.DataFrame(new, index=df.index)], axis=1)` for new float64 columns
    whose names are not in df: df's blocks shared copy-on-write (as concat shares them), one
    block per new column, the combined column Index built once per set of names (concat
    rebuilds an Arrow string Index on every call: ~20 ms)."""
    n = len(df)
    arrs = list(new.values())
    if FAST and new and all(_usable(a, n) for a in arrs):
        try:
            cols = _columns(tuple(df.columns) + tuple(new))
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


# ------------------------------------------------------------ an op's own fresh outputs
# The lean constructors behind `df.lake.indicators.NAME()`: the caller guarantees what
# `series`/`frame_from_arrays` check (1-D float64 numpy arrays of len(index), just allocated,
# unique str names), so the per-call cost is the few pandas objects themselves: the Series or
# DataFrame filled in as pandas' own `_from_mgr` + `NDFrame.__init__` fill it, the block
# placements (immutable) shared. The wrapper must cost <= 10% of a 100k-row kernel, and its
# Python work runs with the caches cold from that kernel: every call layer counts. Checked
# once, on first use, against the public constructors (else those are used).
_OWN: list = []     # [float block class, Flags] once the internals passed the check
_PLACE: dict = {}   # n -> BlockPlacement(slice(0, n)) (a few lengths) / (i, i + 1) for frames
_OWN_COLUMNS: dict = {}
_ROWS = [BlockPlacement(slice(i, i + 1)) for i in range(3)] if FAST else []


def _own_ready() -> bool:
    if not _OWN and FAST:
        try:
            from pandas.core.flags import Flags
            from pandas.core.internals.blocks import get_block_type
            _OWN[:] = [get_block_type(np.dtype(np.float64)), Flags]
            idx = pd.date_range("2024-01-01", periods=3, freq="1min", tz="UTC", name="t")
            a, b = np.array([1.0, np.nan, 3.0]), np.array([4.0, 5.0, -6.0])
            for got, exp in ((own_series(a, idx, "x"), pd.Series(a.copy(), index=idx, name="x")),
                             (own_frame(("x", "y"), (a.copy(), b), idx),
                              pd.DataFrame({"x": a.copy(), "y": b.copy()}, index=idx))):
                if isinstance(got, pd.Series):
                    pd.testing.assert_series_equal(got, exp, check_exact=True)
                else:
                    pd.testing.assert_frame_equal(got, exp, check_exact=True)
                assert sorted(got.__dict__) == sorted(exp.__dict__)
                assert got.flags.__dict__.keys() == exp.flags.__dict__.keys()
                assert got.flags._obj() is got
                assert got.flags.allows_duplicate_labels and got.attrs == {}
                got.iloc[0] = 7.0                      # writable, copy-on-write as usual
        except Exception:  # noqa: BLE001 - internals changed: the public constructors
            _OWN[:] = [None]
        _PLACE.clear()
    return bool(_OWN) and _OWN[0] is not None


def _place(key):
    """BlockPlacement(slice(0, key)) for an int, slice(*key) for a pair; remembered."""
    bp = _PLACE.get(key)
    if bp is None:
        if len(_PLACE) > 64:
            _PLACE.clear()
        bp = _PLACE[key] = BlockPlacement(slice(0, key) if isinstance(key, int) else slice(*key))
    return bp


def own_series(arr: np.ndarray, index: pd.Index, name: str) -> pd.Series:
    """`pd.Series(arr, index=index, name=name, copy=False)` for a just-computed 1-D float64
    array of len(index) and a str name, without any check or copy."""
    own = _OWN
    if FAST and own and own[0] is not None:
        n = arr.shape[0]
        mgr = _new(SingleBlockManager)
        mgr.axes = [index]
        mgr.blocks = (own[0](arr, ndim=1, placement=_PLACE.get(n) or _place(n), refs=None),)
        s = _new(_SERIES)
        d = s.__dict__
        d["_mgr"] = mgr
        d["_attrs"] = {}
        d["_flags"] = fl = _new(own[1])          # Flags(s, allows_duplicate_labels=True)
        fd = fl.__dict__
        fd["_allows_duplicate_labels"] = True
        fd["_obj"] = _weakref(s)
        d["_name"] = name
        return s
    if FAST and not own and _own_ready():
        return own_series(arr, index, name)
    return pd.Series(arr, index=index, name=name, copy=False)


_new = object.__new__
_SERIES, _FRAME = pd.Series, pd.DataFrame
_BM_NEW = BlockManager.__new__ if FAST else None
_weakref = weakref.ref


def own_frame(names: tuple, arrs, index: pd.Index) -> pd.DataFrame:
    """`pd.DataFrame(dict(zip(names, arrs)), index=index, copy=False)` for just-computed 1-D
    float64 arrays of len(index) and unique str names (a tuple): one block per array, no
    check, no copy."""
    own = _OWN
    if FAST and own and own[0] is not None:
        cols = _OWN_COLUMNS.get(names)
        if cols is None:
            cols = _OWN_COLUMNS.setdefault(names, _columns(names))
        block, rows = own[0], _ROWS
        if len(arrs) == 3:              # unrolled: no comprehension on the per-call path
            a, b, c = arrs
            blocks = (block(a.reshape(1, -1), ndim=2, placement=rows[0], refs=None),
                      block(b.reshape(1, -1), ndim=2, placement=rows[1], refs=None),
                      block(c.reshape(1, -1), ndim=2, placement=rows[2], refs=None))
        elif len(arrs) == 2:
            a, b = arrs
            blocks = (block(a.reshape(1, -1), ndim=2, placement=rows[0], refs=None),
                      block(b.reshape(1, -1), ndim=2, placement=rows[1], refs=None))
        else:
            blocks = tuple([block(a.reshape(1, -1), ndim=2, placement=_place((i, i + 1)),
                                  refs=None) for i, a in enumerate(arrs)])
        # BlockManager(blocks, axes, verify_integrity=False) without its no-op Python __init__
        mgr = _BM_NEW(BlockManager, blocks, [cols, index], False)
        f = _new(_FRAME)
        d = f.__dict__
        d["_mgr"] = mgr
        d["_attrs"] = {}
        d["_flags"] = fl = _new(own[1])          # Flags(f, allows_duplicate_labels=True)
        fd = fl.__dict__
        fd["_allows_duplicate_labels"] = True
        fd["_obj"] = _weakref(f)
        return f
    if FAST and not own and _own_ready():
        return own_frame(names, arrs, index)
    return pd.DataFrame(dict(zip(names, arrs, strict=True)), index=index, copy=False)

"""Technical indicators on OHLCV frames: pandas in, numba kernels, pandas out.

    from cryptolake.ops.indicators import INDICATORS, add_indicators
    INDICATORS["rsi"](df, window=14)                  # Series "rsi_14", index = df.index
    add_indicators(df, ["rsi", ("macd", {"fast": 8})])  # copy of df with the columns added

Values equal `ta`'s (`fillna=False`) with the same parameters; see `cryptolake.testing.oracles`
for the reference of each one. `window` is the main look-back everywhere; defaults are `ta`'s.
One-output indicators return a Series named `{name}_{window}` (`obv`, which has none, is named
`obv`); several-output ones a DataFrame with fixed column names. A (symbol, time) MultiIndex is
computed per symbol: no value crosses symbols. No value depends on a later row.

Where `ta` returns 0 instead of NaN during a warm-up (ATR, ADX and Keltner's ATR bands), so do
we: the contract is equality with `ta`.
"""
from __future__ import annotations

import threading
import weakref
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from ..kernels import indicators as K
from . import _buffers, _split
from ._frame import append_columns, own_frame, own_series, validate_frame, values
from ._jobs import Job as _Job
from ._jobs import fuse as _fuse
from ._threads import on_threads, on_worker, workers

HLC = ("high", "low", "close")
HLCV = ("high", "low", "close", "volume")


# ---------------------------------------------------------------- plumbing
def _window(name: str, value, minimum: int = 1) -> int:
    if type(value) is int and value >= minimum:      # the common case, first (not bool)
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _number(name: str, value) -> float:
    if type(value) is float and value - value == 0.0:    # finite (inf - inf and NaN are NaN)
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _segments(df: pd.DataFrame) -> list[tuple[int, int]]:
    """Row ranges of each symbol for a (symbol, time) MultiIndex, else the whole frame."""
    n = len(df)
    if isinstance(df.index, pd.MultiIndex) and n:
        codes = np.asarray(df.index.codes[0])
        cuts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
        bounds = np.concatenate(([0], cuts, [n]))
        return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return [(0, n)]


# Frames at least this long with several symbols run their symbols on all cores.
PARALLEL_MIN_ROWS = 50_000
_workers = workers
_on_threads = on_threads


def _groups(segs: list[tuple[int, int]], k: int) -> list[list[tuple[int, int]]]:
    """Split consecutive segments into at most k groups of about equal rows."""
    total = segs[-1][1] - segs[0][0]
    groups: list[list[tuple[int, int]]] = [[]]
    for a, b in segs:
        if groups[-1] and b - segs[0][0] > total * len(groups) / k and len(groups) < k:
            groups.append([])
        groups[-1].append((a, b))
    return [g for g in groups if g]


def _parallel_ok(n: int, tasks: int) -> bool:
    return tasks >= 2 and _workers() >= 2 and n >= PARALLEL_MIN_ROWS and not on_worker()


def _check(df: pd.DataFrame, need: tuple) -> None:
    """`validate_frame`, with a fast path for a (symbol, time) MultiIndex whose time level is
    sorted (then strictly increasing time codes per symbol mean strictly increasing times,
    and the time values need not be materialised). A passing index is remembered (weakly):
    pandas indexes are immutable, so the same index object passes again without a look."""
    idx = df.index
    if _OK_INDEX() is idx and isinstance(df, pd.DataFrame):
        if all(c in df.columns for c in need):
            return
    elif isinstance(df, pd.DataFrame) and isinstance(idx, pd.MultiIndex) and len(idx) > 1:
        lev = idx.levels[-1]
        if isinstance(lev, pd.DatetimeIndex) and lev.tz is not None \
                and lev.is_monotonic_increasing and all(c in df.columns for c in need):
            sym = np.asarray(idx.codes[0])
            tc = np.asarray(idx.codes[-1])
            same = sym[1:] == sym[:-1]
            if bool(np.all(sym[1:] >= sym[:-1])) and not bool(np.any(same & (tc[1:] <= tc[:-1]))):
                _remember(idx)
                return
    validate_frame(df, need=need)
    _remember(idx)


def _dead():
    return None


_OK_INDEX = _dead            # weak reference to the last index that passed `_check`


def _remember(idx) -> None:
    global _OK_INDEX
    try:
        _OK_INDEX = weakref.ref(idx)
    except TypeError:  # pragma: no cover - an index type without weak references
        _OK_INDEX = _dead


# The last frame's input arrays, remembered so that the next indicator on the same, unchanged
# frame skips the checks and the column look-ups (most of the wrapper's cost on 100k rows):
# (weakref to the frame, weakref to its BlockManager, its blocks tuple, index, columns,
#  {need: [arrays]}, segments or None). A hit needs the very same manager, blocks tuple and
# axes objects: pandas replaces at least one of them whenever a column is set, inserted,
# deleted or renamed, the index is set, or a shared block is copied on write; an in-place edit
# of values writes into the same memory, which the remembered views see. Only views of the
# frame's own memory are remembered (a converted copy, e.g. of an int column, could go
# stale). The references die with the frame or its manager (weakref callbacks).
_MEMO: tuple | None = None


def _forget(ref) -> None:
    global _MEMO
    memo = _MEMO
    if memo is not None and (memo[0] is ref or memo[1] is ref):
        _MEMO = None


def _inputs(df: pd.DataFrame, need: tuple):
    """(the columns `need` as contiguous float64 arrays, the symbol segments of a (symbol,
    time) MultiIndex or None) after `_check`; from `_MEMO` when the frame is unchanged."""
    memo = _MEMO
    if memo is not None and memo[0]() is df:
        mgr = df._mgr
        if memo[1]() is mgr and mgr.blocks is memo[2] and mgr.axes[1] is memo[3] \
                and mgr.axes[0] is memo[4]:
            cols = memo[5].get(need)
            if cols is not None:
                return cols, memo[6]
    return _inputs_slow(df, need)


def _inputs_slow(df: pd.DataFrame, need: tuple):
    global _MEMO
    _check(df, need)
    segs = _segments(df) if isinstance(df.index, pd.MultiIndex) else None
    locs = _positions(df.columns, need)
    if locs is None:
        validate_frame(df, need=need)                 # says which column is missing
        return [values(df, c) for c in need], segs    # duplicated names: pandas' own rules
    mgr = df._mgr
    cols, views = [], True
    for i in locs:
        arr = mgr.iget_values(i)
        out = np.ascontiguousarray(arr, dtype=np.float64) if isinstance(arr, np.ndarray) \
            else np.ascontiguousarray(values(df, need[len(cols)]))
        views &= out is arr
        cols.append(out)
    if views:
        memo = _MEMO
        if memo is not None and memo[0]() is df and memo[1]() is mgr \
                and mgr.blocks is memo[2] and mgr.axes[1] is memo[3] and mgr.axes[0] is memo[4]:
            memo[5][need] = cols
        else:
            try:
                _MEMO = (weakref.ref(df, _forget), weakref.ref(mgr, _forget), mgr.blocks,
                         mgr.axes[1], mgr.axes[0], {need: cols}, segs)
            except TypeError:  # pragma: no cover - no weak references: remember nothing
                _MEMO = None
    return cols, segs


def _positions(columns: pd.Index, need: tuple):
    """Integer positions of `need` in `columns`, or None when one is missing or duplicated."""
    try:
        locs = tuple([columns.get_loc(c) for c in need])
    except (KeyError, TypeError):
        return None
    if not all(isinstance(i, (int, np.integer)) for i in locs):
        return None
    return locs


def _arrays(df: pd.DataFrame, need: tuple) -> list[np.ndarray]:
    """Check the frame (see `_check`) and return the columns `need` as contiguous float64
    arrays (views of the frame's memory where they can be)."""
    return _inputs(df, need)[0]


_LOCAL = threading.local()
_DEFERRING = 0                # threads inside `add_indicators` (then `_run` looks at _LOCAL)
_DEFER_LOCK = threading.Lock()


def _drain(tasks: list, fn: Callable) -> None:
    """Run fn(task) for every task on all cores, each thread taking the next task as it comes
    free (on a shared machine one core may be slower: nobody waits on a fixed share)."""
    it = iter(range(len(tasks)))         # next() on it is atomic under the GIL

    def worker():
        for i in it:
            fn(tasks[i])

    _on_threads([worker] * min(_workers(), len(tasks)))


# Symbol chunks per core on a many-symbol frame: enough to even out the load between cores.
CHUNKS_PER_CORE = 4


def _per_segment(jobs: list, segs) -> None:
    """Every job on one symbol, then the next symbol (its inputs stay in cache)."""
    for a, b in segs:
        for j in jobs:
            j.run(a, b)


def _execute(jobs: list, segs: list[tuple[int, int]], n: int) -> None:
    """Run the jobs, fused where a fuser is registered for some of them (`_fuse`): symbols
    split into chunks of about equal rows that the threads take in turn (each runs every job
    on one symbol, then the next), or, on one series, the jobs themselves taken in turn by
    the threads."""
    if not jobs or not n:
        return
    jobs = _fuse(jobs)
    if len(segs) >= 2 and _parallel_ok(n, len(segs)):
        chunks = _groups(segs, _workers() * CHUNKS_PER_CORE)
        _drain(chunks, lambda g: _per_segment(jobs, g))
    elif len(segs) == 1 and _parallel_ok(n, len(jobs)):
        a, b = segs[0]
        _drain(jobs, lambda j: j.run(a, b))
    else:
        _per_segment(jobs, segs)


def _run(df: pd.DataFrame, need: tuple, kernel: Callable, names, *params):
    """Validate, pull the columns `need` as float64 arrays, run `kernel(*cols, *params, out)`
    per symbol segment (symbols in parallel on large frames) and return a Series named
    `names` (a str: one output) or a DataFrame with columns `names` (a tuple: one output
    each, separate 1-D arrays: no strided 2-D block, and each one small enough for the
    allocator to reuse). Inside `add_indicators` the call is only recorded; the arrays behind
    the returned object are filled once every indicator has been recorded.

    This is the whole per-call path of `df.lake.indicators.NAME()`: every line runs with the
    caches cold from the last 100k-row kernel, so it stays flat (no comprehensions, no extra
    call layers)."""
    memo, cols = _MEMO, None          # `_inputs`, inlined: one call layer less
    if memo is not None and memo[0]() is df:
        mgr = df._mgr
        if memo[1]() is mgr and mgr.blocks is memo[2] and mgr.axes[1] is memo[3] \
                and mgr.axes[0] is memo[4]:
            cols, segs = memo[5].get(need), memo[6]
    if cols is None:
        cols, segs = _inputs_slow(df, need)
    n = cols[0].shape[0]
    one = names.__class__ is str
    empty = _buffers.empty           # big outputs: reused pages (see `_buffers`)
    if one:
        outs = (empty(n),)
    elif len(names) == 3:
        outs = (empty(n), empty(n), empty(n))
    elif len(names) == 2:
        outs = (empty(n), empty(n))
    else:
        outs = tuple([empty(n) for _ in names])
    out = outs[0] if one else outs
    if _DEFERRING and getattr(_LOCAL, "jobs", None) is not None:
        _LOCAL.jobs.append(_Job(kernel, cols, params, outs, len(outs)))
    elif segs is None:
        # a long series on all cores (the splitters of `_split`), else one call
        if n and (n < _split.SPLIT_MIN_ROWS or not _split.run(kernel, cols, params, outs)):
            kernel(*cols, *params, out)
    elif n:
        _execute([_Job(kernel, cols, params, outs, len(outs))], segs, n)
    if one:
        return own_series(out, df.index, names)
    return own_frame(names, outs, df.index)


# ---------------------------------------------------------------- moving averages
def sma(df: pd.DataFrame, window: int = 12) -> pd.Series:
    """Simple moving average of close: `ta.trend.sma_indicator(close, window)`."""
    w = _window("window", window)
    return _run(df, ("close",), K.rolling_mean, f"sma_{w}", w, w)


def ema(df: pd.DataFrame, window: int = 12) -> pd.Series:
    """Exponential moving average of close: `ta.trend.ema_indicator(close, window)`
    (span=window, adjust=False, NaN until window rows)."""
    w = _window("window", window)
    return _run(df, ("close",), K.ewm_mean, f"ema_{w}", K.alpha_from_span(w), w)


def wma(df: pd.DataFrame, window: int = 9) -> pd.Series:
    """Linearly weighted moving average of close: `ta.trend.wma_indicator(close, window)`."""
    w = _window("window", window)
    return _run(df, ("close",), K.wma, f"wma_{w}", w)


def kama(df: pd.DataFrame, window: int = 10, fast: int = 2, slow: int = 30) -> pd.Series:
    """Kaufman adaptive moving average: `ta.momentum.kama(close, window, pow1=fast,
    pow2=slow)`."""
    w = _window("window", window)
    f, s = _window("fast", fast), _window("slow", slow)
    return _run(df, ("close",), K.kama, f"kama_{w}", w, f, s)


# ---------------------------------------------------------------- momentum
def rsi(df: pd.DataFrame, window: int = 14) -> pd.Series:
    """Relative strength index (Wilder): `ta.momentum.rsi(close, window)`."""
    w = _window("window", window)
    return _run(df, ("close",), K.rsi, f"rsi_{w}", w)


def macd(df: pd.DataFrame, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    """MACD: columns macd, macd_signal, macd_hist = `ta.trend.MACD(close, window_slow=slow,
    window_fast=fast, window_sign=signal)` .macd(), .macd_signal(), .macd_diff()."""
    f, s, g = _window("fast", fast), _window("slow", slow), _window("signal", signal)
    return _run(df, ("close",), K.macd, ("macd", "macd_signal", "macd_hist"), f, s, g)


def stoch(df: pd.DataFrame, window: int = 14, smooth: int = 3) -> pd.DataFrame:
    """Stochastic oscillator: columns stoch_k, stoch_d = `ta.momentum.StochasticOscillator(
    high, low, close, window, smooth_window=smooth)` .stoch(), .stoch_signal()."""
    w, s = _window("window", window), _window("smooth", smooth)
    return _run(df, HLC, K.stoch, ("stoch_k", "stoch_d"), w, s)


def williams_r(df: pd.DataFrame, window: int = 14) -> pd.Series:
    """Williams %R in [-100, 0]: `ta.momentum.williams_r(high, low, close, lbp=window)`."""
    w = _window("window", window)
    return _run(df, HLC, K.williams_r, f"williams_r_{w}", w)


def roc(df: pd.DataFrame, window: int = 12) -> pd.Series:
    """Rate of change in percent: `ta.momentum.roc(close, window)`."""
    w = _window("window", window)
    return _run(df, ("close",), K.roc, f"roc_{w}", w)


def cci(df: pd.DataFrame, window: int = 20, c: float = 0.015) -> pd.Series:
    """Commodity channel index: `ta.trend.cci(high, low, close, window, constant=c)`."""
    w = _window("window", window)
    return _run(df, HLC, K.cci, f"cci_{w}", w, _number("c", c))


def adx(df: pd.DataFrame, window: int = 14) -> pd.DataFrame:
    """Average directional index: columns adx, adx_pos, adx_neg = `ta.trend.ADXIndicator(
    high, low, close, window)` .adx(), .adx_pos(), .adx_neg() (0 during ta's warm-up)."""
    w = _window("window", window)
    return _run(df, HLC, K.adx, ("adx", "adx_pos", "adx_neg"), w)


def tsi(df: pd.DataFrame, window: int = 25, fast: int = 13) -> pd.Series:
    """True strength index: `ta.momentum.tsi(close, window_slow=window, window_fast=fast)`."""
    w, f = _window("window", window), _window("fast", fast)
    return _run(df, ("close",), K.tsi, f"tsi_{w}", w, f)


def trix(df: pd.DataFrame, window: int = 15) -> pd.Series:
    """TRIX, percent change of the triple EMA: `ta.trend.trix(close, window)`."""
    w = _window("window", window)
    return _run(df, ("close",), K.trix, f"trix_{w}", w)


def stoch_rsi(df: pd.DataFrame, window: int = 14, smooth1: int = 3,
              smooth2: int = 3) -> pd.DataFrame:
    """Stochastic RSI in [0, 1]: columns stochrsi, stochrsi_k, stochrsi_d =
    `ta.momentum.StochRSIIndicator(close, window, smooth1, smooth2)`."""
    w, a, b = _window("window", window), _window("smooth1", smooth1), _window("smooth2", smooth2)
    return _run(df, ("close",), K.stoch_rsi, ("stochrsi", "stochrsi_k", "stochrsi_d"), w, a, b)


def ultimate_oscillator(df: pd.DataFrame, window: int = 7, window2: int = 14,
                        window3: int = 28, weight1: float = 4.0, weight2: float = 2.0,
                        weight3: float = 1.0) -> pd.Series:
    """Ultimate oscillator: `ta.momentum.ultimate_oscillator(high, low, close, window1=window,
    window2, window3, weight1, weight2, weight3)`."""
    w1, w2, w3 = _window("window", window), _window("window2", window2), _window("window3", window3)
    ks = [_number(n, v) for n, v in (("weight1", weight1), ("weight2", weight2),
                                     ("weight3", weight3))]
    return _run(df, HLC, K.ultimate_oscillator, f"ultimate_oscillator_{w1}", w1, w2, w3, *ks)


def aroon(df: pd.DataFrame, window: int = 25) -> pd.DataFrame:
    """Aroon: columns aroon_up, aroon_down = `ta.trend.AroonIndicator(high, low, window)`."""
    w = _window("window", window)
    return _run(df, ("high", "low"), K.aroon, ("aroon_up", "aroon_down"), w)


def psar(df: pd.DataFrame, step: float = 0.02, max_step: float = 0.2) -> pd.DataFrame:
    """Parabolic SAR: columns psar, psar_up, psar_down = `ta.trend.PSARIndicator(high, low,
    close, step, max_step)` .psar(), .psar_up(), .psar_down()."""
    return _run(df, HLC, K.psar, ("psar", "psar_up", "psar_down"), _number("step", step),
                _number("max_step", max_step))


# ---------------------------------------------------------------- volatility
def bbands(df: pd.DataFrame, window: int = 20, k: float = 2.0) -> pd.DataFrame:
    """Bollinger bands: columns bb_mid, bb_upper, bb_lower (mean +/- k population std), as
    `ta.volatility.BollingerBands(close, window, window_dev=k)` but with the exact standard
    deviation (pandas' rolling std, which ta uses, drifts by up to 1e-5 relative)."""
    w = _window("window", window)
    return _run(df, ("close",), K.bbands, ("bb_mid", "bb_upper", "bb_lower"), w,
                _number("k", k))


def atr(df: pd.DataFrame, window: int = 14) -> pd.Series:
    """Average true range (Wilder): `ta.volatility.average_true_range(high, low, close,
    window)`; the first window-1 rows are 0, as in ta."""
    w = _window("window", window)
    return _run(df, HLC, K.atr, f"atr_{w}", w)


def keltner(df: pd.DataFrame, window: int = 20, atr_window: int = 10, k: float = 2.0,
            original_version: bool = True) -> pd.DataFrame:
    """Keltner channel: columns kc_mid, kc_upper, kc_lower = `ta.volatility.KeltnerChannel(
    high, low, close, window, window_atr=atr_window, multiplier=k, original_version=...)`.

    original_version=True (ta's default): SMA of typical price, bands SMA(tp +/- (k/2)(h-l))
    (ta's fixed bands when k=2; atr_window unused). False: EMA(close) +/- k * ATR(atr_window).
    """
    w, a = _window("window", window), _window("atr_window", atr_window)
    return _run(df, HLC, K.keltner, ("kc_mid", "kc_upper", "kc_lower"), w, a, _number("k", k),
                bool(original_version))


def donchian(df: pd.DataFrame, window: int = 20, offset: int = 0) -> pd.DataFrame:
    """Donchian channel: columns dc_mid, dc_upper, dc_lower = `ta.volatility.DonchianChannel(
    high, low, close, window, offset)` mband/hband/lband. offset >= 0 lags the bands."""
    w, o = _window("window", window), _window("offset", offset, 0)
    return _run(df, ("high", "low"), K.donchian, ("dc_mid", "dc_upper", "dc_lower"), w, o)


# ---------------------------------------------------------------- volume
def vwap(df: pd.DataFrame, window: int = 14) -> pd.Series:
    """Rolling volume-weighted typical price: `ta.volume.volume_weighted_average_price(high,
    low, close, volume, window)`; NaN where the window traded nothing."""
    w = _window("window", window)
    return _run(df, HLCV, K.vwap, f"vwap_{w}", w)


def obv(df: pd.DataFrame) -> pd.Series:
    """On-balance volume: `ta.volume.on_balance_volume(close, volume)`."""
    return _run(df, ("close", "volume"), K.obv, "obv")


def mfi(df: pd.DataFrame, window: int = 14) -> pd.Series:
    """Money flow index in [0, 100]: `ta.volume.money_flow_index(high, low, close, volume,
    window)`."""
    w = _window("window", window)
    return _run(df, HLCV, K.mfi, f"mfi_{w}", w)


def cmf(df: pd.DataFrame, window: int = 20) -> pd.Series:
    """Chaikin money flow: `ta.volume.chaikin_money_flow(high, low, close, volume, window)`."""
    w = _window("window", window)
    return _run(df, HLCV, K.cmf, f"cmf_{w}", w)


def force_index(df: pd.DataFrame, window: int = 13) -> pd.Series:
    """Force index: `ta.volume.force_index(close, volume, window)`."""
    w = _window("window", window)
    return _run(df, ("close", "volume"), K.force_index, f"force_index_{w}", w)


def eom(df: pd.DataFrame, window: int = 14) -> pd.Series:
    """Ease of movement, smoothed: `ta.volume.sma_ease_of_movement(high, low, volume, window)`."""
    w = _window("window", window)
    return _run(df, ("high", "low", "volume"), K.eom, f"eom_{w}", w)


INDICATORS: dict[str, Callable[..., pd.Series | pd.DataFrame]] = {
    "sma": sma, "ema": ema, "wma": wma, "rsi": rsi, "macd": macd, "bbands": bbands,
    "atr": atr, "vwap": vwap, "obv": obv, "stoch": stoch, "adx": adx, "cci": cci, "mfi": mfi,
    "williams_r": williams_r, "roc": roc, "kama": kama, "keltner": keltner,
    "donchian": donchian, "tsi": tsi, "trix": trix, "stoch_rsi": stoch_rsi,
    "ultimate_oscillator": ultimate_oscillator, "aroon": aroon, "psar": psar, "cmf": cmf,
    "force_index": force_index, "eom": eom,
}


def _parse(spec) -> tuple[str, dict]:
    if isinstance(spec, str):
        name, params = spec, {}
    elif isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str) \
            and isinstance(spec[1], dict):
        name, params = spec[0], dict(spec[1])
    else:
        raise ValueError(f"indicator spec must be a name or a (name, params-dict) pair, "
                         f"got {spec!r}")
    if name not in INDICATORS:
        raise ValueError(f"unknown indicator {name!r}; available: {sorted(INDICATORS)}")
    return name, params


def add_indicators(df: pd.DataFrame, specs: Iterable) -> pd.DataFrame:
    """A copy of `df` with the columns of each indicator added.

    specs: names or (name, params) pairs, e.g. ``["rsi", ("macd", {"fast": 8}),
    ("sma", {"window": 50})]``. An existing column of the same name is replaced; two specs
    that produce the same column raise ValueError (give them different windows).
    """
    if isinstance(specs, (str, tuple)):
        specs = [specs]
    parsed = [_parse(s) for s in specs]
    seen: dict[str, str] = {}
    new: dict = {}
    global _DEFERRING
    _LOCAL.jobs = jobs = []
    with _DEFER_LOCK:
        _DEFERRING += 1
    try:
        for name, params in parsed:
            try:
                res = INDICATORS[name](df, **params)
            except TypeError as e:
                raise ValueError(f"bad parameters for {name}: {e}") from None
            # the output arrays themselves (no Series per column): `_run` built `res` on them
            if isinstance(res, pd.DataFrame):
                mgr = res._mgr
                cols = [(c, mgr.iget_values(i)) for i, c in enumerate(res.columns)]
            else:
                cols = [(res.name, res._values)]
            for col, ser in cols:
                if col in seen:
                    raise ValueError(f"column {col!r} produced by both {seen[col]} and {name}; "
                                     "use different parameters or add them in separate calls")
                seen[col] = name
                new[col] = ser
    finally:
        _LOCAL.jobs = None
        with _DEFER_LOCK:
            _DEFERRING -= 1
    _execute(jobs, _segments(df), len(df))      # fills the arrays behind `new`
    if any(c in df.columns for c in new):       # replaced columns keep their place
        out = df.copy(deep=False)
        for col, ser in new.items():
            out[col] = ser
        return out
    return append_columns(df, new)

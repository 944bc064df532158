"""`df.lake`: OHLCV verbs on any DataFrame with a tz-aware, sorted DatetimeIndex (or a
(symbol, time) MultiIndex). Thin and stateless: every method hands the frame to `cryptolake.ops`.

Constructing `df.lake` never raises, whatever the frame (`dir(df)`, `hasattr(df, "lake")` and
Jupyter's Tab completion call it on every DataFrame); each verb validates its frame when called.
The bar size of gaps, fill_gaps and `resample(partial=False)` is `freq` when given, else the
archive interval in `df.attrs["interval"]` (frames read from the lake), else an unambiguous
guess (`cryptolake.ops._time.bar_step`).

    df.lake.resample("1h", offset="5min")
    df.lake.gaps()
    df.lake.fill_gaps()
    df.lake.indicators.rsi(window=14)
    df.lake.indicators(["rsi", "macd", ("bbands", {"window": 30})])
    df.lake.plot(indicators=["sma", "rsi"])
"""
from __future__ import annotations

import functools

import pandas as pd

from .grid import ATTR
from .ops import bars as _bars
from .ops import gaps as _gaps
from .ops import resample as _resample
from .ops._bins import output_attrs
from .ops._frame import OHLC, validate_frame
from .ops._time import check_frame


_INDICATORS_MODULE = None


def _method(fn):
    @functools.wraps(fn)
    def method(self, *args, **kwargs):
        return fn(self._df, *args, **kwargs)
    return method


def _install(table) -> None:
    """Put every indicator on `Indicators` as a method (pandas builds a new accessor object on
    every `df.lake`, so the lookup itself is on the hot path of a 100k-row call)."""
    for name, fn in table.items():
        if name not in Indicators.__dict__:
            setattr(Indicators, name, _method(fn))


class Indicators:
    """`df.lake.indicators.NAME(**params)` for one indicator, `df.lake.indicators(specs)` to add
    several as columns; `dir()` lists every name in `cryptolake.ops.indicators.INDICATORS`."""

    def __init__(self, df: pd.DataFrame):
        self._df = df

    @staticmethod
    def _module():
        global _INDICATORS_MODULE
        if _INDICATORS_MODULE is None:   # lazy: the indicator module is imported on first use
            from .ops import indicators
            _INDICATORS_MODULE = indicators
        return _INDICATORS_MODULE

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        table = self._module().INDICATORS
        fn = table.get(name)
        if fn is None:
            raise AttributeError(f"no indicator {name!r}; available: {sorted(table)}")
        _install(table)     # from now on a plain method lookup, no failed-lookup detour
        return functools.partial(fn, self._df)

    def __call__(self, specs) -> pd.DataFrame:
        """`specs`: names or (name, params) pairs; returns the frame with the columns added."""
        return self._module().add_indicators(self._df, specs)

    def __dir__(self):
        return sorted(set(self._module().INDICATORS) | set(super().__dir__()))

    def __repr__(self) -> str:
        return f"<df.lake.indicators: {', '.join(sorted(self._module().INDICATORS))}>"


@pd.api.extensions.register_dataframe_accessor("lake")
class LakeAccessor:
    """OHLCV verbs; nothing is checked until a verb is called."""

    def __init__(self, df: pd.DataFrame):
        self._df = df       # no validation here: this runs on dir(df) for every DataFrame

    def _need_ohlc(self) -> pd.DataFrame:
        # the columns and tz only (no rows needed); the verb's op checks the order
        validate_frame(self._df.iloc[:0], need=OHLC, monotonic=False)
        return self._df

    def resample(self, rule, offset=None, partial: bool = True, *, bars: bool = False,
                 freq=None):
        """OHLCV-aware `df.resample(rule, offset=offset)` for fixed and calendar rules ('W',
        'ME', 'MS', 'QE', 'YE', ...); `freq`: the source bar size for partial=False. See
        `cryptolake.ops.resample.resample`."""
        # resample checks the frame itself (columns, tz, order): no second check here
        return _resample.resample(self._df, rule, offset, partial, bars=bars, freq=freq)

    def gaps(self, freq=None) -> pd.DataFrame:
        """Runs of missing bars: start, end, missing, duration; see `cryptolake.ops.gaps.gaps`."""
        return _gaps.gaps(self._df, freq)

    def fill_gaps(self, freq=None) -> pd.DataFrame:
        """Missing bars inserted (close carried, zero volume), `is_filled` column added."""
        df = self._need_ohlc()
        out = _gaps.fill_gaps(df, freq)
        out.attrs = output_attrs(df.attrs, df.attrs.get(ATTR))
        return out

    def trades_to_bars(self, rule, offset=None) -> pd.DataFrame:
        """Bars from a trades/aggTrades frame; see `cryptolake.ops.bars.trades_to_bars`."""
        return _bars.trades_to_bars(self._df, rule, offset)

    def bars(self, by: str = "dollar", size: float = 1e7, *, carry=None) -> pd.DataFrame:
        """Tick, volume or dollar bars from a trades/aggTrades frame (López de Prado), indexed
        by each bar's last trade; see `cryptolake.ops.info_bars.bars`."""
        from .ops import info_bars
        return info_bars.bars(self._df, by, size, carry=carry)

    @property
    def indicators(self) -> Indicators:
        """`df.lake.indicators.rsi(window=14)`, `df.lake.indicators(["rsi", "macd"])`."""
        return Indicators(self._df)

    def plot(self, indicators=(), *, max_candles: int = 1500, title: str | None = None,
             figsize=(12, 7), gaps=None):
        """Candles, a volume panel and `indicators` (names or (name, params)); `gaps` (a
        `Table.gaps()` frame) shades each gap by cause. Returns a Figure."""
        from .plot import plot_ohlcv

        check_frame(self._df, need=OHLC, strict=False, ticks=False)
        return plot_ohlcv(self._df, indicators, max_candles=max_candles, title=title,
                          figsize=figsize, gaps=gaps)

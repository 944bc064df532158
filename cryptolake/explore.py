"""`cl.explore(lake)`: an ipywidgets panel to browse a lake's kline tables in Jupyter.

    panel = cl.explore(lake)                       # the last cell of a notebook shows it
    panel = cl.explore(lake, table="um_klines_1m", symbol="ETHUSDT", rule="1h",
                       indicators=["bbands", "rsi"])

Pick a table, a symbol, a date range (inclusive days, UTC), a resample rule and indicators;
every change redraws a matplotlib chart (candles, volume, indicators, gaps shaded by cause)
and an HTML pane with coverage and gaps for the selection. It only uses the public Table API
(`read`, `gaps`, `symbols`). A redraw reads the selected range's OHLCV columns only; once per
symbol the panel reads that symbol's `close` column (its first and last day) and its gaps
(so a selection inside a long gap still shows it). A range with more than `MAX_BARS` bars is
resampled before drawing (the smallest rule of `RULES` that fits; the chart title and the
pane say so), so a year of 1m bars stays quick to redraw.
`panel.last_redraw_seconds` holds the last redraw time (also logged at DEBUG).
"""
from __future__ import annotations

import pandas as pd

RULES = ("raw", "5min", "15min", "1h", "4h", "1D", "W")
MAX_BARS = 2000            # more bars than this in the range: resample before drawing
DEFAULT_DAYS = 30          # first range shown: the symbol's last 30 days
COLUMNS = ["open", "high", "low", "close", "volume"]
FIRST_INDICATORS = ("sma", "ema", "bbands", "rsi", "macd", "atr", "vwap")
_RULE_SPAN = {r: pd.Timedelta(days=7) if r == "W" else pd.Timedelta(r) for r in RULES[1:]}
_INTERVAL_UNITS = {"s": "s", "m": "min", "h": "h", "d": "D", "w": "W"}


def _indicator_names() -> list[str]:
    from .ops.indicators import INDICATORS
    return list(FIRST_INDICATORS) + sorted(set(INDICATORS) - set(FIRST_INDICATORS))


def _bar_size(table: str, index: pd.DatetimeIndex) -> pd.Timedelta | None:
    """The table's bar size from its name (`..._1m`), else the median spacing of the rows."""
    tail = table.rsplit("_", 1)[-1]
    num, unit = tail[:-1], tail[-1:]
    if num.isdigit() and unit in _INTERVAL_UNITS and unit != "w":
        return pd.Timedelta(int(num), unit=_INTERVAL_UNITS[unit])
    if unit == "w" and num.isdigit():
        return pd.Timedelta(days=7 * int(num))
    if len(index) > 1:
        return pd.Series(index).diff().median()
    return None


def choose_rule(rule: str, n_rows: int, span: pd.Timedelta, bar: pd.Timedelta | None,
                max_bars: int = MAX_BARS) -> tuple[str, str]:
    """(rule to draw with, note). "raw" stays raw while it has at most `max_bars` bars; a rule
    that would draw more (or any rule when raw is too long) is replaced by the smallest rule
    of `RULES`, coarser than the bar size, that fits. Rules not coarser than the bar: raw."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; allowed: {list(RULES)}")
    def bars(r):
        return n_rows if r == "raw" else int(span // _RULE_SPAN[r]) + 1
    if rule != "raw" and bar is not None and _RULE_SPAN[rule] <= bar:
        return "raw", f"{rule} is not coarser than the {_label(bar)} bars: drawn raw"
    if bars(rule) <= max_bars:
        return rule, ""
    start = 1 if rule == "raw" else RULES.index(rule) + 1
    for r in RULES[start:]:
        if (bar is None or _RULE_SPAN[r] > bar) and bars(r) <= max_bars:
            return r, f"auto {r}: {rule} would draw {bars(rule):,} bars (more than {max_bars:,})"
    return "W", f"auto W: {rule} would draw {bars(rule):,} bars"


def _label(td: pd.Timedelta) -> str:
    for name, size in (("D", "1D"), ("h", "1h"), ("min", "1min"), ("s", "1s")):
        if td >= pd.Timedelta(size) and td % pd.Timedelta(size) == pd.Timedelta(0):
            return f"{td // pd.Timedelta(size)}{name}"
    return str(td)


def _kline_tables(lake) -> list[str]:
    return [t for t in lake.silver.tables if "klines" in t]


def explore(lake, *, table: str | None = None, symbol: str | None = None, start=None, end=None,
            rule: str = "raw", indicators=()) -> Explorer:
    """An ipywidgets panel over `lake`'s silver kline tables (see the module docstring).

    Keyword arguments pick the first view: `table` (default: the first kline table),
    `symbol` (default: the first), `start`/`end` (dates, default: the symbol's last 30 days),
    `rule` (one of `RULES`), `indicators` (names from `cryptolake.ops.indicators.INDICATORS`).
    Unknown values raise ValueError listing the allowed ones. A lake without kline tables
    gives a panel that says so.
    """
    if not hasattr(lake, "silver"):
        raise ValueError(f"explore needs a cl.Lake, got {type(lake).__name__}")
    from ._explore_panel import Explorer

    return Explorer(lake, table=table, symbol=symbol, start=start, end=end, rule=rule,
                    indicators=indicators)


def __getattr__(name: str):
    if name == "Explorer":          # the widget class imports ipywidgets and matplotlib: lazily
        from ._explore_panel import Explorer
        return Explorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

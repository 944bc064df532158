"""Trades -> tick, volume and dollar bars: pandas in -> `kernels.info_bars` -> pandas out."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..kernels import info_bars as kib
from ._frame import values
from .bars import _qty_column
from ._time import check_frame

KINDS = {"tick": kib.TICK, "volume": kib.VOLUME, "dollar": kib.DOLLAR}
BAR_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "quote_volume", "trades",
               "taker_buy_volume", "taker_buy_quote_volume", "vwap")


@dataclass
class Carry:
    """The unfinished bar of each symbol, to continue a build on the next batch of trades
    (a day, a file) so that incremental builds equal one pass over everything."""
    by: str
    size: float
    state: dict = field(default_factory=dict)      # symbol (or None) -> (fstate, istate)

    def get(self, key):
        if key not in self.state:
            self.state[key] = (np.zeros(8), np.zeros(4, np.int64))
        return self.state[key]


def _check(by, size) -> int:
    if by not in KINDS:
        raise ValueError(f"unknown bar type by={by!r}; allowed: {', '.join(KINDS)}")
    try:
        ok = float(size) > 0 and np.isfinite(float(size))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"size={size!r} must be a positive number (trades, base volume or quote turnover)")
    return KINDS[by]


def bars(trades: pd.DataFrame, by: str = "dollar", size: float = 1e7, *, carry: Carry | None = None) -> pd.DataFrame:
    """Information-driven bars from `trades`/`aggTrades` rows indexed by their time (per
    symbol on a (symbol, time) MultiIndex), as López de Prado defines them: a bar closes on
    the trade at which the trades (`by="tick"`; aggTrades count `last_trade_id -
    first_trade_id + 1`), base volume (`"volume"`) or quote turnover price * qty (`"dollar"`)
    accumulated since it opened reach `size`. The crossing trade closes the bar; the count
    restarts at zero.

    Each row is one closed bar indexed by `close_time` (its last trade: the bar is known then,
    so using the index never looks ahead), with `open_time`, OHLC, `volume`, `quote_volume`,
    `trades`, `taker_buy_volume`, `taker_buy_quote_volume` and `vwap`. The unfinished last bar
    is not returned; pass a `Carry` to keep it and continue on the next batch.
    """
    kind = _check(by, size)
    t, lev, seg = check_frame(trades, need=("price", "is_buyer_maker"), strict=False)
    if carry is None:
        carry = Carry(by, float(size))
    elif (carry.by, carry.size) != (by, float(size)):
        raise ValueError(f"carry was built for by={carry.by!r}, size={carry.size}; got by={by!r}, size={size}")
    qty = values(trades, _qty_column(trades))
    price = values(trades, "price")
    maker = np.ascontiguousarray(trades["is_buyer_maker"].to_numpy(np.bool_, copy=False))
    if {"first_trade_id", "last_trade_id"} <= set(trades.columns):
        n = trades["last_trade_id"].to_numpy(np.int64) - trades["first_trade_id"].to_numpy(np.int64) + 1
    else:
        n = np.ones(len(trades), np.int64)
    multi = isinstance(trades.index, pd.MultiIndex)
    frames = []
    for s in range(len(seg) - 1):
        a, b = seg[s], seg[s + 1]
        key = trades.index[a][0] if multi and b > a else None
        fstate, istate = carry.get(key)
        m = b - a
        t_open, t_close = np.empty(m, np.int64), np.empty(m, np.int64)
        f = {c: np.empty(m) for c in ("open", "high", "low", "close", "volume", "quote_volume",
                                      "taker_buy_volume", "taker_buy_quote_volume")}
        cnt = np.empty(m, np.int64)
        k = kib.threshold_bars(t[a:b], price[a:b], qty[a:b], maker[a:b], n[a:b], kind, float(size),
                               fstate, istate, t_open, t_close, f["open"], f["high"], f["low"],
                               f["close"], f["volume"], f["quote_volume"], cnt,
                               f["taker_buy_volume"], f["taker_buy_quote_volume"])
        dtype = pd.DatetimeTZDtype(unit=lev.unit, tz="UTC")
        out = pd.DataFrame({"open_time": pd.DatetimeIndex(t_open[:k].view(f"M8[{lev.unit}]")).tz_localize("UTC"),
                            **{c: v[:k] for c, v in f.items()}, "trades": cnt[:k]},
                           index=pd.DatetimeIndex(t_close[:k].view(f"M8[{lev.unit}]"), name="close_time").tz_localize("UTC").astype(dtype))
        out["vwap"] = out["quote_volume"] / out["volume"]
        if multi:
            out = pd.concat({key: out}, names=["symbol", "close_time"])
        frames.append(out[list(BAR_COLUMNS)])
    if not frames:
        return pd.DataFrame({c: [] for c in BAR_COLUMNS}, index=pd.DatetimeIndex([], tz="UTC", name="close_time"))
    return pd.concat(frames) if len(frames) > 1 else frames[0]

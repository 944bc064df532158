"""Trades -> OHLCV bars: pandas in -> `kernels.bars` -> pandas out."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..kernels import bars as kb
from ._bins import Bins
from ._frame import values
from ._time import check_frame, rebuild_index

BAR_COLUMNS = ("open", "high", "low", "close", "volume", "quote_volume", "trades",
               "taker_buy_volume", "taker_buy_quote_volume", "vwap")


def _qty_column(df: pd.DataFrame) -> str:
    for col in ("qty", "quantity"):
        if col in df.columns:
            return col
    raise ValueError(f"trades need a 'qty' (trades) or 'quantity' (aggTrades) column; "
                     f"have {list(df.columns)}")


def trades_to_bars(trades: pd.DataFrame, rule, offset=None) -> pd.DataFrame:
    """Bars from `trades` or `aggTrades` rows indexed by their time (`time` / `transact_time`;
    per symbol on a (symbol, time) MultiIndex).

    Columns: `open, high, low, close` (first/max/min/last price), `volume` (sum of qty),
    `quote_volume` (sum of price * qty), `trades` (rows, or `last_trade_id - first_trade_id + 1`
    summed for aggTrades), `taker_buy_volume` and `taker_buy_quote_volume` (the same sums over
    rows with `is_buyer_maker` False: the taker bought) and `vwap = quote_volume / volume`.
    Bins are those of `df.resample(rule, offset=offset)`; bins without trades are absent.
    """
    t, lev, seg = check_frame(trades, need=("price", "is_buyer_maker"), strict=False)
    qty = values(trades, _qty_column(trades))
    price = values(trades, "price")
    maker = np.ascontiguousarray(trades["is_buyer_maker"].to_numpy(np.bool_, copy=False))
    if {"first_trade_id", "last_trade_id"} <= set(trades.columns):
        n = (trades["last_trade_id"].to_numpy(np.int64) - trades["first_trade_id"].to_numpy(np.int64)
             + 1)
    else:
        n = np.ones(len(trades), np.int64)
    bins = Bins(t, lev, seg, rule, offset, len(BAR_COLUMNS))
    out = {c: bins.column(np.int64 if c == "trades" else np.float64) for c in BAR_COLUMNS}
    kb.trades_to_bars(t, price, qty, maker, n, bins.starts, bins.nb, out["open"], out["high"], out["low"],
                      out["close"], out["volume"], out["quote_volume"], out["trades"],
                      out["taker_buy_volume"], out["taker_buy_quote_volume"], out["vwap"])
    bseg = bins.bseg if isinstance(trades.index, pd.MultiIndex) else None
    index = rebuild_index(bins.labels, trades, lev, bseg, seg, bins.step)
    if isinstance(index, pd.MultiIndex):
        index = index.set_names("open_time", level=-1)
    else:
        index = index.rename("open_time")
    return pd.DataFrame(out, index=index, copy=False)

"""Hypothesis strategies for OHLCV frames shaped like silver kline tables, with missing rows.

    from cryptolake.testing.strategies import ohlcv_frames
    @given(ohlcv_frames(freq="1min", max_bars=500))
    def test_x(df): ...

Frames satisfy `low <= open, close <= high`, volumes >= 0, `taker_buy_* <= volume`, int64
`trades`, and a strictly increasing tz-aware UTC DatetimeIndex named `open_time` on the grid of
`freq` (with random rows dropped). `symbols=k` gives a (`symbol`, `open_time`) MultiIndex.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st

COLUMNS = ("open", "high", "low", "close", "volume", "quote_volume", "trades",
           "taker_buy_volume", "taker_buy_quote_volume")
UNITS = ("s", "ms", "us", "ns")


def _bars(n: int, seed: int, price0: float, vol_scale: float, missing: float,
          start: pd.Timestamp, freq: pd.Timedelta, unit: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ret = rng.normal(0.0, 0.01, n)
    close = price0 * np.exp(np.cumsum(ret))
    open_ = np.r_[price0, close[:-1]] * np.exp(rng.normal(0.0, 0.002, n))
    high = np.maximum(open_, close) * (1 + rng.exponential(0.003, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0.0, 0.003, n))
    volume = rng.exponential(vol_scale, n) * (rng.random(n) > 0.05)   # some zero-volume bars
    buy = volume * rng.random(n)
    trades = rng.poisson(50, n).astype(np.int64) * (volume > 0)
    mid = (high + low) / 2
    idx = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="open_time").as_unit(unit)
    df = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                       "volume": volume, "quote_volume": volume * mid, "trades": trades,
                       "taker_buy_volume": buy, "taker_buy_quote_volume": buy * mid}, index=idx)
    keep = rng.random(n) >= missing
    keep[0] = keep[-1] = True   # the span is what was drawn; min_bars >= 2 holds after dropping
    return df[keep]


@st.composite
def ohlcv_frames(draw, freq="1min", *, min_bars: int = 1, max_bars: int = 400,
                 units=("ms", "us", "ns"), missing=None, symbols=None,
                 start_min="2019-01-01", start_max="2025-12-31") -> pd.DataFrame:
    """A kline-like frame at bar size `freq` with random length, start, unit and missing rows.

    `missing`: fraction of rows dropped (None draws one from {0, small, large}); `units`: the
    index units to draw from; `symbols`: None for a DatetimeIndex, an int k (or a list of
    names) for a (`symbol`, `open_time`) MultiIndex with a frame per symbol of its own length.
    Starts fall anywhere (not only on midnight) but on the `freq` grid.
    """
    freq = pd.Timedelta(freq)
    unit = draw(st.sampled_from(tuple(units)))
    lo, hi = pd.Timestamp(start_min, tz="UTC"), pd.Timestamp(start_max, tz="UTC")
    n_steps = int((hi - lo) // freq)
    if symbols is None:
        names = [None]
    else:
        names = [f"SYM{i}USDT" for i in range(symbols)] if isinstance(symbols, int) else list(symbols)
    frames = []
    for _ in names:
        n = draw(st.integers(min_bars, max_bars))
        start = lo + draw(st.integers(0, n_steps)) * freq
        frac = missing if missing is not None else draw(st.sampled_from((0.0, 0.05, 0.5)))
        seed = draw(st.integers(0, 2**32 - 1))
        price0 = draw(st.sampled_from((0.0005, 1.0, 250.0, 60000.0)))
        frames.append(_bars(n, seed, price0, draw(st.sampled_from((0.5, 1e3))), frac, start,
                            freq, unit))
    if symbols is None:
        return frames[0]
    return pd.concat(frames, keys=names, names=["symbol", "open_time"])


@st.composite
def trades_frames(draw, *, min_trades: int = 1, max_trades: int = 500, units=("ms", "us"),
                  span="3h") -> pd.DataFrame:
    """A `trades`-like frame indexed by `time`: price, qty, is_buyer_maker; sorted times with
    repeats (several prints in one millisecond)."""
    n = draw(st.integers(min_trades, max_trades))
    seed = draw(st.integers(0, 2**32 - 1))
    unit = draw(st.sampled_from(tuple(units)))
    rng = np.random.default_rng(seed)
    span_ms = int(pd.Timedelta(span) / pd.Timedelta("1ms"))
    offs = np.sort(rng.integers(0, span_ms, n))
    start = pd.Timestamp("2024-03-01", tz="UTC") + pd.Timedelta(draw(st.integers(0, 86_400_000)),
                                                                "ms")
    idx = (start + pd.to_timedelta(offs, unit="ms")).as_unit(unit).rename("time")
    price = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    return pd.DataFrame({"price": price, "qty": rng.exponential(2.0, n),
                         "is_buyer_maker": rng.random(n) < 0.5}, index=idx)


# ---------------------------------------------------------------- pandas oracles
# The reference implementations that tests compare with and benchmarks time as the peer.
SUMMED = ("volume", "quote_volume", "base_volume", "taker_buy_volume", "taker_buy_quote_volume",
          "taker_buy_base_volume", "trades")


def pandas_agg_spec(df: pd.DataFrame) -> dict[str, str]:
    """The `.agg` dict that `df.lake.resample` reproduces for the numeric columns of `df`."""
    fixed = {"open": "first", "high": "max", "low": "min", "close": "last"}
    spec = {}
    for col in df.columns:
        if col in fixed:
            spec[col] = fixed[col]
        elif col in SUMMED:
            spec[col] = "sum"
        elif pd.api.types.is_bool_dtype(df[col].dtype):
            spec[col] = "any"
        elif pd.api.types.is_numeric_dtype(df[col].dtype):
            spec[col] = "last"
    return spec


def pandas_resample(df: pd.DataFrame, rule, offset=None) -> pd.DataFrame:
    """`df.resample(rule, offset=offset).agg(spec)` on the non-empty bins only."""
    r = df.resample(rule, offset=offset)
    out = r.agg(pandas_agg_spec(df))
    return out[r.size().to_numpy() > 0]


def pandas_gaps(df: pd.DataFrame, freq) -> pd.DataFrame:
    """Runs of missing bars from `index.diff()` (one DatetimeIndex)."""
    idx = df.index
    freq = pd.Timedelta(freq)
    d = idx.to_series().diff()
    m = (d > freq).to_numpy()
    prev = idx[:-1][m[1:]]
    missing = ((d[m] - pd.Timedelta(1, unit=idx.unit)) // freq).to_numpy().astype(np.int64)
    return pd.DataFrame({"start": (prev + freq).as_unit(idx.unit),
                         "end": (prev + freq * missing).as_unit(idx.unit),
                         "missing": missing,
                         "duration": pd.to_timedelta(missing * freq).as_unit(idx.unit)})


def pandas_trades_to_bars(trades: pd.DataFrame, rule, offset=None) -> pd.DataFrame:
    """Bars from trades with `resample` + `groupby` sums (non-empty bins only)."""
    qty = trades["qty"] if "qty" in trades.columns else trades["quantity"]
    buy = ~trades["is_buyer_maker"].to_numpy(bool)
    frame = pd.DataFrame({"price": trades["price"], "qty": qty, "pq": trades["price"] * qty,
                          "bq": np.where(buy, qty, 0.0), "bpq": np.where(buy, trades["price"] * qty, 0.0),
                          "n": 1}, index=trades.index)
    r = frame.resample(rule, offset=offset)
    out = pd.DataFrame({"open": r["price"].first(), "high": r["price"].max(),
                        "low": r["price"].min(), "close": r["price"].last(),
                        "volume": r["qty"].sum(), "quote_volume": r["pq"].sum(),
                        "trades": r["n"].sum(), "taker_buy_volume": r["bq"].sum(),
                        "taker_buy_quote_volume": r["bpq"].sum()})
    out["vwap"] = out["quote_volume"] / out["volume"]
    out.index.name = "open_time"
    return out[r.size().to_numpy() > 0]

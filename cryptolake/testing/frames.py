"""Seeded OHLCV frames for tests and benchmarks: a 1m random walk with cent prices, wicks and
a share of zero-volume bars, reproducible from its arguments."""
from __future__ import annotations

import numpy as np
import pandas as pd


def walk_ohlcv(n: int, seed: int, price: float = 100.0, *, sigma: float = 1e-3,
               wick: float = 0.05, zero_share: float = 0.05,
               start: str = "2024-03-01") -> pd.DataFrame:
    """n one-minute bars from `start` (UTC, index `open_time`): open, high, low, close, volume.
    Log returns N(0, sigma), wicks exponential with mean `wick`, volume lognormal and zero on
    about `zero_share` of the bars."""
    rng = np.random.default_rng(seed)
    close = np.round(price * np.exp(np.cumsum(rng.normal(0.0, sigma, n))), 2)
    open_ = np.r_[close[:1], close[:-1]]
    high = np.maximum(open_, close) + np.round(rng.exponential(wick, n), 2)
    low = np.minimum(open_, close) - np.round(rng.exponential(wick, n), 2)
    volume = np.round(rng.lognormal(1.0, 1.0, n), 3) * (rng.random(n) > zero_share)
    idx = pd.date_range(start, periods=n, freq="1min", tz="UTC", name="open_time")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                         "volume": volume}, index=idx)

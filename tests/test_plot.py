"""df.lake.plot: a matplotlib Figure with the expected panels (Agg)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import cryptolake.accessors  # noqa: F401,E402


def _frame(n=300, volume=True):
    rng = np.random.default_rng(1)
    idx = pd.date_range("2024-05-01", periods=n, freq="1min", tz="UTC", name="open_time")
    c = 10 + np.cumsum(rng.normal(0, 0.05, n))
    o = np.r_[10.0, c[:-1]]
    df = pd.DataFrame({"open": o, "high": np.maximum(o, c) + 0.02, "low": np.minimum(o, c) - 0.02,
                       "close": c}, index=idx.as_unit("us"))
    if volume:
        df["volume"] = rng.exponential(1.0, n)
    return df


def test_candles_and_volume():
    fig = _frame().lake.plot()
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    price = fig.axes[0]
    assert len(price.collections) == 2                      # wicks + bodies, not one per candle
    assert len(price.collections[1].get_paths()) == 300
    fig.canvas.draw()                                       # renders under Agg


def test_without_volume_one_axis():
    assert len(_frame(volume=False).lake.plot().axes) == 1


def test_long_series_is_resampled_and_says_so():
    fig = _frame(n=5000).lake.plot(max_candles=1000)
    title = fig.axes[0].get_title()
    assert "resampled" in title and "5min" in title
    assert len(fig.axes[0].collections[1].get_paths()) <= 1000


def test_indicator_panels():
    pytest.importorskip("cryptolake.ops.indicators")
    fig = _frame().lake.plot(indicators=["sma", ("rsi", {"window": 7}), "macd"])
    assert len(fig.axes) == 4                               # price(+sma), volume, rsi, macd
    assert len(fig.axes[0].lines) >= 1


def test_several_symbols_rejected():
    df = pd.concat({"A": _frame(), "B": _frame()}, names=["symbol", "open_time"])
    with pytest.raises(ValueError, match="one symbol"):
        df.lake.plot()
    assert len(df.loc[["A"]].lake.plot().axes) == 2

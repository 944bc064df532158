"""Every indicator kernel in one namespace (the kernels live in ma.py, rolling.py,
momentum.py, oscillators.py, volatility.py and volume.py). Pure numba on float64 arrays; never imports
pandas."""
from __future__ import annotations

from ._ewm import alpha_from_alpha, alpha_from_span  # noqa: F401
from ._sums import np_sum  # noqa: F401
from .ma import ewm_mean, wma  # noqa: F401
from .momentum import ema_chain, kama, macd, roc, rsi, stoch_rsi, trix, tsi  # noqa: F401
from .oscillators import (  # noqa: F401
    adx, aroon, cci, psar, stoch, ultimate_oscillator, williams_r)
from .rolling import (  # noqa: F401
    rolling_max, rolling_mean, rolling_mean_exact, rolling_mean_std, rolling_min, rolling_std,
    rolling_sum)
from .volatility import atr, bbands, donchian, keltner, true_range  # noqa: F401
from .volume import cmf, eom, force_index, mfi, obv, vwap  # noqa: F401

"""Pure numba kernels on numpy arrays (int64 ns times, float64 values). Never imports pandas."""
from ._jit import jit, register_warmup, warm  # noqa: F401
from . import resample, gaps, bars, info_bars  # noqa: F401,E402  (df.lake resample/gaps/bars)
from . import ma, rolling, momentum, oscillators, volatility, volume, indicators  # noqa: F401,E402  (df.lake.indicators)

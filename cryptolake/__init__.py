"""cryptolake: Binance public market data as a clean, gap-aware research lake.

    import cryptolake as cl
    lake = cl.Lake()                       # or cl.Lake("s3://bucket/prefix", storage_options=...)
    report = lake.ingest("um", "klines", ["BTCUSDT"], interval="1m", start="2024-01-01")
    df = lake.silver.um_klines_1m["BTCUSDT"]
    df.lake.resample("1h").lake.indicators(["rsi", "macd"])
"""
from __future__ import annotations

__version__ = "0.1.0"

from .explore import explore  # noqa: E402
from .lake import Lake  # noqa: E402
from .report import IngestReport  # noqa: E402
from .runs import runs  # noqa: E402
from .sources.archive import BinanceArchive  # noqa: E402
from .sources.rest import BinanceREST  # noqa: E402

from . import accessors as _accessors  # noqa: E402,F401  (registers the df.lake accessor)

from .layers.silver import MergeConflict  # noqa: E402

__all__ = ["Lake", "BinanceArchive", "BinanceREST", "IngestReport", "MergeConflict", "explore",
           "runs", "__version__"]

"""Quickstart, offline: ingest the bundled sample archive, read a symbol, resample, add
indicators, plot. Run: python examples/quickstart.py [LAKE_DIR] [PNG]"""
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import cryptolake as cl  # noqa: E402

HERE = Path(__file__).resolve().parent
lake_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="cryptolake-")
png = sys.argv[2] if len(sys.argv) > 2 else str(Path(lake_dir) / "ethusdt-15min.png")

lake = cl.Lake(lake_dir, archive=cl.BinanceArchive((HERE / "sample-archive").as_uri()))
report = lake.ingest("spot", "klines", ["BTCUSDT", "ETHUSDT"], interval="1m", top_up=False,
                     progress=False)
print(report)
print(report.gaps.to_string(index=False))

eth = lake.silver.spot_klines_1m["ETHUSDT"]                 # one symbol: indexed by open_time
bars = eth.lake.resample("15min")                             # OHLCV-aware
bars = bars.lake.indicators(["rsi", "macd", ("bbands", {"window": 20, "k": 2})])
print(bars[["open", "high", "low", "close", "volume", "rsi_14", "macd", "bb_upper"]].tail())
print(eth.lake.gaps())

fig = bars.lake.plot(indicators=["bbands", "rsi"], title="ETHUSDT 15min (sample archive)")
fig.savefig(png, dpi=80)
print("chart:", png)

"""Gold tables: research-ready Delta tables derived from silver (see `Lake.build_gold`).

`kinds` computes (one symbol, pandas in and out); `build` validates requests, commits each
symbol's partitions through the layer writer, and keeps the build records that make
`lake.build_gold()` incremental and `lake.gold.stale()` possible.
"""
from .build import build_gold, make_spec, stale

__all__ = ["build_gold", "make_spec", "stale"]

"""The `Lake` facade: where the lake lives, where data comes from, and the layers. It
orchestrates and returns DataFrames; it does no number crunching itself."""
from __future__ import annotations

import html
from typing import Any

from . import config
from .layers.bronze import Bronze
from .query import Layer
from .report import IngestReport
from .storage import Storage


class Lake:
    """A research lake on any fsspec URL.

    >>> lake = cl.Lake()                                   # $CRYPTOLAKE_ROOT or ~/.cryptolake
    >>> lake = cl.Lake("s3://bucket/prefix", storage_options={...})
    >>> lake = cl.Lake(root, archive=cl.BinanceArchive("file:///mirror"))
    >>> report = lake.ingest("um", "klines", ["BTCUSDT"], interval="1m", start="2024-01-01")
    >>> lake.silver.um_klines_1m["BTCUSDT"]

    Credentials go in `storage_options` (or the environment) and are never printed.
    """

    def __init__(self, url: str | None = None, storage_options: dict[str, Any] | None = None,
                 archive=None, rest=None):
        self.storage = Storage(url or config.default_root(), storage_options)
        self._archive = archive
        self.rest = rest
        self.bronze = Bronze(self.storage)
        self.silver = Layer(self.storage, "silver", self._file_spans)
        self.gold = Layer(self.storage, "gold")

    def _file_spans(self, table: str) -> dict:
        """symbol -> source-file Spans of one silver table, from the bronze manifest."""
        from .quality import file_spans
        return file_spans(self.bronze.symbol_rows_all(table))

    @property
    def url(self) -> str:
        return self.storage.url

    @property
    def archive(self):
        """The archive source (the live public archive unless one was given)."""
        if self._archive is None:
            from .sources.archive import BinanceArchive
            self._archive = BinanceArchive()
        return self._archive

    def ingest(self, market: str, data_type: str, symbols=None, interval: str | None = None,
               start=None, end=None, top_up: bool = True, progress: bool = True,
               today=None) -> IngestReport:
        """Fetch archive files into bronze and merge them into silver; returns an IngestReport.

        `symbols=None` means every symbol the archive lists (delisted ones included);
        `start`/`end` are inclusive dates (`end=None`: up to today). Closed months come from
        monthly files, the rest from daily files; every file is checked against its .CHECKSUM
        before it is parsed, and unchanged files are not downloaded again. `today` (a date)
        overrides the clock for deciding which months are closed (tests, back-fills).
        Bad input raises ValueError before anything is downloaded.
        """
        from .ingest import run_ingest
        return run_ingest(self, market, data_type, symbols, interval, start, end,
                          top_up=top_up, progress=progress, today=today)

    def universe(self, market: str, on=None, *, data_type: str = "klines", today=None):
        """Which symbols traded when (point in time, no survivorship bias).

        Without `on`: a DataFrame, one row per symbol the archive lists for `market` (delisted
        and settled ones included) or the lake holds: `first_day`, `last_day`, `segments`
        (the trading segments, history split at silences of 14 days or more: relistings and
        reused names such as LUNA), `n_segments` and `status` (`trading`, `delisted`, or
        `settled` for the archive's `…SETTLED` directories). With `on="2022-06-01"`: the
        sorted list of symbols tradable that day. Built from the archive listing plus the
        files in bronze, never from exchangeInfo. `today` overrides the clock for `status`.
        """
        from . import universe
        keys = [k for k in self.bronze.manifest().query("status == 'stored'")["key"]] \
            if market in ("spot", "um", "cm") else []
        table = universe.build(self.archive, market, data_type, lake_keys=keys, today=today)
        return table if on is None else universe.on_day(table, on)

    def __repr__(self) -> str:
        return f"<Lake {self.url}: silver {len(self.silver)} tables, gold {len(self.gold)} tables>"

    def _repr_html_(self) -> str:
        tables = "".join(f"<li><code>{html.escape(t)}</code></li>" for t in self.silver.tables)
        return (f"<b>Lake</b> <code>{html.escape(self.url)}</code><br>silver:"
                f"<ul>{tables or '<li>empty</li>'}</ul>"
                "next: <code>lake.ingest('um', 'klines', ['BTCUSDT'], interval='1m', start='2024-01-01')</code>")

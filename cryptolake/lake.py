"""The `Lake` facade: where the lake lives, where data comes from, and the layers. It
orchestrates and returns DataFrames; it does no number crunching itself."""
from __future__ import annotations

import datetime as dt
import html
import json
import re
from typing import Any

import pandas as pd

from . import config, layout
from .layers.bronze import Bronze, legacy_manifests
from .query import Layer
from .report import IngestReport
from .storage import Storage

_RETAIN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([DdHhWw])\s*$")


def _retain_hours(retain) -> float:
    if isinstance(retain, (pd.Timedelta, dt.timedelta)):
        return pd.Timedelta(retain).total_seconds() / 3600
    m = _RETAIN.match(str(retain))
    if not m:
        raise ValueError(f"retain={retain!r} is not a duration; use e.g. '7D', '36H', '2W' or a Timedelta")
    return float(m[1]) * {"h": 1, "d": 24, "w": 168}[m[2].lower()]


class Lake:
    """A research lake on a local path or file://, s3://, gs://, az:// URL.

    >>> lake = cl.Lake()                                   # $CRYPTOLAKE_ROOT or ~/.cryptolake
    >>> lake = cl.Lake("s3://bucket/prefix", storage_options={...})
    >>> lake = cl.Lake(root, archive=cl.BinanceArchive("file:///mirror"))
    >>> report = lake.ingest("um", "klines", ["BTCUSDT"], interval="1m", start="2024-01-01")
    >>> lake.silver.um_klines_1m["BTCUSDT"]

    Silver and gold are Delta tables; `lake.versions()` + `lake.at(...)` give reproducible
    reads. Credentials go in `storage_options` (s3fs spelling) or the environment and are
    never printed. `memory://` is refused (a Delta table there lives in one handle only).
    """

    def __init__(self, url: str | None = None, storage_options: dict[str, Any] | None = None,
                 archive=None, rest=None, *, _pins=None):
        self.storage = Storage(url or config.default_root(), storage_options)
        self._archive = archive
        self.rest = rest
        self._pins = _pins            # None, or {"silver.x": v, ...} / a timestamp: read-only
        silver_pins = gold_pins = bronze_pin = None
        if isinstance(_pins, dict):
            silver_pins = {k.split(".", 1)[1]: v for k, v in _pins.items() if k.startswith("silver.")}
            gold_pins = {k.split(".", 1)[1]: v for k, v in _pins.items() if k.startswith("gold.")}
            bronze_pin = _pins.get("bronze.manifest")
        elif _pins is not None:
            silver_pins = gold_pins = bronze_pin = _pins
        self.bronze = Bronze(self.storage, pinned=bronze_pin)
        self.silver = Layer(self.storage, "silver", self._file_spans, pins=silver_pins,
                            universe=self.universe)
        self.gold = Layer(self.storage, "gold", pins=gold_pins, universe=self.universe)

    def _file_spans(self, table: str) -> dict:
        """symbol -> source-file Spans of one silver table, from the bronze manifest."""
        from .quality import file_spans
        return file_spans(self.bronze.symbol_rows_all(table))

    @property
    def url(self) -> str:
        return self.storage.url

    @property
    def read_only(self) -> bool:
        """True for a lake pinned with `lake.at(...)`."""
        return self._pins is not None

    @property
    def archive(self):
        """The archive source (the live public archive unless one was given)."""
        if self._archive is None:
            from .sources.archive import BinanceArchive
            self._archive = BinanceArchive()
        return self._archive

    def _check_writable(self) -> None:
        if self.read_only:
            raise PermissionError("this lake is pinned with lake.at(...) and is read-only; "
                                  "write through the unpinned lake")
        if self.is_legacy():
            raise RuntimeError(f"{self.url} is in the pre-Delta layout; run lake.migrate() or "
                               f"`cryptolake migrate {self.url}` first")

    def ingest(self, market: str, data_type: str, symbols=None, interval: str | None = None,
               start=None, end=None, top_up: bool = True, merge: str = "archive_first",
               progress: bool = True, today=None, client=None) -> IngestReport:
        """Fetch archive files into bronze and merge them into silver; returns an IngestReport.

        `symbols=None` means every symbol the archive lists (delisted ones included);
        `start`/`end` are inclusive dates (`end=None`: up to today). Closed months come from
        monthly files, the rest from daily files; every file is checked against its .CHECKSUM
        before it is parsed, and unchanged files are not downloaded again. `today` (a date)
        overrides the clock for deciding which months are closed (tests, back-fills).
        Each symbol's month partitions are replaced in one Delta commit. Bad input raises
        ValueError before anything is downloaded.

        `top_up=True` fills the days the archive lacks (holes, and days not published yet, up to
        today) from Binance's REST API through `self.rest` (a `cl.BinanceREST`; the live API when
        the archive is the live one); its raw pages are kept in bronze, its rows carry
        `source="rest"`, and when the archive later publishes such a day its rows replace them.
        `merge` decides which row wins where archive and REST share an instant:
        "archive_first" (default), "rest_first", "latest" (the most recently fetched file) or
        "fail" (raise `MergeConflict` on any disagreement). Disagreements are listed in
        `report.conflicts` and the `silver.conflicts` SQL table under every strategy.
        `client=`: a dask.distributed Client; each symbol is fetched and committed by a worker,
        through the same manifest and commits.
        """
        if client is not None:     # one task per symbol on the cluster (cryptolake.scale)
            from .scale import ingest_on_client
            return ingest_on_client(self, client, market, data_type, symbols, interval, start, end,
                                    top_up=top_up, merge=merge, today=today)
        from .ingest import run_ingest
        return run_ingest(self, market, data_type, symbols, interval, start, end,
                          top_up=top_up, merge=merge, progress=progress, today=today)

    def build_gold(self, kind: str | None = None, source: str | None = None, *, client=None,
                   progress: bool = True, **params) -> pd.DataFrame:
        """Build a gold table from silver (or, for "features", from a gold bars table).

        Kinds and their parameters (`symbols=`, `start=`, `end=` and `name=` for all):

        - "bars": `rule` ("1h", "4h", … or calendar "W", "ME"), `phases` (None: "0min";
          "all": every offset of the rule on the source grid; or a list such as ["0min",
          "5min"]), `partial=False` (bars missing any source bar are dropped and counted).
          Table `<market>_bars_<rule>` with `phase` and `bars` columns.
        - "funding_bars": `rule` (fixed) on a um/cm klines table, joined with every funding
          event in each bar (see `cryptolake.gold.kinds.join_funding`).
        - "trade_bars": from an aggTrades/trades table, `rule=` (time bars) or `by=` ("tick",
          "volume", "dollar") and `size=`; the unfinished bar carries over months and builds.
        - "features": `indicators=[...]` (as `df.lake.indicators`) on a gold bars table,
          `phase="0min"`; each indicator gets a `warmup_<name>` column.

        With no arguments, rebuilds only the (symbol, month) partitions whose inputs changed
        since their build (`lake.gold.stale()` lists them). `client=`: a dask.distributed
        Client: each symbol is built and committed by a worker. Returns one row per symbol:
        table, symbol, months_built, rows, partial_dropped. Bad input -> ValueError, nothing
        written.
        """
        from .gold.build import build_gold
        return build_gold(self, kind, source, client=client, progress=progress, **params)

    def quality(self, table: str | None = None):
        """A `QualityReport` (one row per table and symbol): coverage, gaps by cause, off-grid
        and zero-volume bars, duplicates, conflicts, republished files, parity with the
        archive's coarser klines, and a score (formula in `cryptolake.quality_report`)."""
        from .quality_report import quality_report
        return quality_report(self, table)

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

    # ------------------------------------------------------------ versions
    def _layers(self):
        return (self.silver, self.gold)

    def versions(self) -> dict[str, int]:
        """{"silver.um_klines_1m": 12, "gold.um_bars_1h": 3, ..., "bronze.manifest": 40}:
        the version of every table this lake reads (save it to re-open the lake there)."""
        out = {}
        for layer in self._layers():
            for name in layer.tables:
                out[f"{layer.layer}.{name}"] = layer[name].version
        v = self.bronze.version
        if v is not None:
            out["bronze.manifest"] = v
        return out

    def at(self, versions_or_timestamp) -> "Lake":
        """A read-only Lake pinned at `lake.versions()` output, a run record (a dict with a
        "versions" entry, a row of `cl.runs(lake)`, or a path to a run directory or its
        record.json) or a timestamp: the same frames,
        forever (until `vacuum` removes files older than its retention). Writes raise."""
        pins = versions_or_timestamp
        if isinstance(pins, pd.Series) or (isinstance(pins, str) and (
                pins.endswith(".json") or "_runs/" in pins.replace("\\", "/"))):
            from .runs import resolve      # a row of cl.runs(lake), a record.json or run directory
            pins = resolve(self, pins)
        if isinstance(pins, dict) and "versions" in pins and isinstance(pins["versions"], dict):
            v = pins["versions"]
            pins = v.get("after", v) if isinstance(v.get("after"), dict) else v
        if isinstance(pins, dict):
            bad = [k for k in pins if not re.match(r"^(silver|gold|bronze)\.\w+$", k)]
            if bad:
                raise ValueError(f"lake.at() keys must look like 'silver.<table>' (from lake.versions()); got {bad}")
            pins = {k: int(v) for k, v in pins.items()}
        elif not isinstance(pins, (str, dt.datetime, pd.Timestamp, dt.date)):
            raise ValueError("lake.at() takes lake.versions() output, a run record or a timestamp; "
                             f"got {type(pins).__name__}")
        else:
            pins = pd.Timestamp(pins)
            pins = pins.tz_localize("UTC") if pins.tz is None else pins.tz_convert("UTC")
        lake = Lake.__new__(Lake)
        Lake.__init__(lake, self.url, storage_options=self.storage._options, archive=self._archive,
                      rest=self.rest, _pins=pins)
        return lake

    # ------------------------------------------------------------ maintenance
    def _tables(self, table=None) -> list[str]:
        rels = [f"{lay.layer}/{n}" for lay in self._layers() for n in lay.tables]
        if table is None:
            return rels + [r for r in ("bronze/_manifest", "_catalog") if self.storage.is_delta(r)]
        want = table if "." in table else None
        hits = [r for r in rels if r.replace("/", ".") == want or r.split("/")[1] == table]
        if not hits:
            raise ValueError(f"no table {table!r}; tables: {[r.replace('/', '.') for r in rels]}")
        return hits

    def optimize(self, table: str | None = None) -> pd.DataFrame:
        """Compact small files per partition (every table, or one: 'um_klines_1m' or
        'silver.um_klines_1m'). Returns one row per table: files added/removed."""
        self._check_writable()
        out = []
        if table is None:
            from .layers import catalog
            catalog.compact(self.storage)              # keep each partition's current row only
        for rel in self._tables(table):
            d = self.storage.open_table(rel)
            m = self.storage.commit(lambda d=d: d.optimize.compact(), f"optimize {rel}")
            out.append((rel.replace("/", "."), m.get("numFilesAdded", 0), m.get("numFilesRemoved", 0)))
        return pd.DataFrame(out, columns=["table", "files_added", "files_removed"])

    def pinned_runs(self) -> list[tuple[str, pd.Timestamp]]:
        """(record path, time) of every run record under `_runs/**/record.json` that pins
        versions (has a "versions" field)."""
        found = []
        for rel in self.storage.find("_runs", "record.json"):
            try:
                rec = json.loads(self.storage.read_bytes(rel))
            except (ValueError, OSError):
                continue
            if not isinstance(rec, dict) or not rec.get("versions"):
                continue
            when = None
            for k in ("started", "started_at", "start", "time", "created", "finished", "finished_at"):
                if rec.get(k):
                    try:
                        when = pd.Timestamp(rec[k])
                        break
                    except (ValueError, TypeError):
                        pass
            if when is None:
                when = pd.Timestamp(self.storage.fs.info(self.storage.path(rel))["mtime"], unit="s")
            found.append((rel, when.tz_localize("UTC") if when.tz is None else when.tz_convert("UTC")))
        return sorted(found, key=lambda x: x[1])

    def vacuum(self, retain="7D", dry_run: bool = False) -> pd.DataFrame:
        """Delete data files that no version within `retain` (e.g. "7D", "48H") needs.

        Refuses a retention shorter than the age of the oldest pinned run record under
        `_runs/` (its `lake.at(run)` would lose files). Returns table, files_deleted."""
        self._check_writable()
        hours = _retain_hours(retain)
        runs = self.pinned_runs()
        if runs:
            rel, when = runs[0]
            age = (pd.Timestamp.now(tz="UTC") - when).total_seconds() / 3600
            if hours < age:
                raise ValueError(f"retain={retain!r} ({hours:g} h) is shorter than the oldest pinned run "
                                 f"record {rel} ({age:.1f} h old): vacuuming would break lake.at() of "
                                 f"that run. Use retain='{int(age // 24) + 1}D' or more, or delete the record")
        out = []
        for rel in self._tables():
            d = self.storage.open_table(rel)
            files = self.storage.commit(lambda d=d: d.vacuum(retention_hours=int(hours), dry_run=dry_run,
                                                             enforce_retention_duration=False),
                                        f"vacuum {rel}")
            out.append((rel.replace("/", "."), len(files)))
        return pd.DataFrame(out, columns=["table", "files_deleted"])

    # ------------------------------------------------------------ SQL
    def sql(self, query: str) -> pd.DataFrame:
        """Run a read-only DuckDB query over `silver.<table>`, `gold.<table>` and
        `bronze.files` (the versions this lake reads); filters and projections are pushed
        down to the Delta tables' Parquet files. Bad SQL or an unknown table -> ValueError."""
        from .sql import run_sql
        return run_sql(self, query)

    # ------------------------------------------------------------ migration
    def is_legacy(self) -> bool:
        """True when the lake holds the pre-Delta layout (plain Parquet partitions or
        per-table Parquet manifests) that `migrate()` converts."""
        if legacy_manifests(self.storage) and not self.storage.is_delta(layout.MANIFEST_DIR):
            return True
        for layer in ("silver", "gold"):
            for p in self.storage.ls(layer):
                name = p.rstrip("/").rsplit("/", 1)[-1]
                rel = f"{layer}/{name}"
                if not name.startswith((".", "_")) and not self.storage.is_delta(rel) and \
                        any(q.rstrip("/").rsplit("/", 1)[-1].startswith("symbol=") for q in self.storage.ls(rel)):
                    return True
        return False

    def migrate(self, progress: bool = True) -> dict[str, int]:
        """Convert a pre-Delta lake in place: the Parquet manifests become the Delta manifest,
        and every silver table is rebuilt from bronze as a Delta table. Returns rows per table."""
        if self.read_only:
            raise PermissionError("this lake is pinned with lake.at(...) and is read-only")
        from .migrate import migrate
        return migrate(self, progress=progress)

    def __repr__(self) -> str:
        pin = " (pinned, read-only)" if self.read_only else ""
        return f"<Lake {self.url}{pin}: silver {len(self.silver)} tables, gold {len(self.gold)} tables>"

    def _repr_html_(self) -> str:
        tables = "".join(f"<li><code>{html.escape(t)}</code></li>" for t in self.silver.tables)
        return (f"<b>Lake</b> <code>{html.escape(self.url)}</code><br>silver:"
                f"<ul>{tables or '<li>empty</li>'}</ul>"
                "next: <code>lake.ingest('um', 'klines', ['BTCUSDT'], interval='1m', start='2024-01-01')</code>")

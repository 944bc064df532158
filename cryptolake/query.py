"""Reading the lake: `Layer` (lake.silver / lake.gold) and `Table` with filter pushdown."""
from __future__ import annotations

import datetime as dt
import html
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from . import grid, layout, schema
from .storage import LegacyLayoutError, Storage

_META_COLS = ("symbol", "month")


_RESO_FREQ = {"year": "Y", "quarter": "Q", "month": "M", "day": "D", "hour": "h",
             "minute": "min", "second": "s", "millisecond": "ms", "microsecond": "us",
             "nanosecond": "ns"}


def _string_bounds(text: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last microsecond of the period a partial date string names, as pandas'
    partial-string indexing reads it: "2024" is the year, "2024-02" February, "2024-01-01 05"
    that hour. A string with a UTC offset is read in that offset."""
    from pandas._libs.tslibs.parsing import parse_datetime_string_with_reso
    try:
        parsed, reso = parse_datetime_string_with_reso(text.strip())
    except (ValueError, TypeError):
        raise ValueError(f"{text!r} is not a date or time; use e.g. '2024', '2024-02', "
                         "'2024-02-01' or '2024-02-01 13:00'") from None
    ts = pd.Timestamp(parsed)
    tz = ts.tz
    naive = ts.tz_localize(None) if tz is not None else ts
    period = pd.Period(naive, freq=_RESO_FREQ.get(reso, "ns"))
    lo = period.start_time
    hi = (period + 1).start_time - pd.Timedelta(microseconds=1)
    lo, hi = (x.tz_localize(tz if tz is not None else "UTC").tz_convert("UTC") for x in (lo, hi))
    return lo.as_unit("us"), hi.as_unit("us")


def _to_timestamp(value, *, end: bool) -> pd.Timestamp | None:
    """A user bound as a UTC Timestamp (both ends inclusive). Strings (and dates) follow
    pandas' partial-string rules: as `end`, "2024-02" means the last instant of February, as
    `start` its first. Timestamps and datetimes are instants (naive ones are UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        lo, hi = _string_bounds(value)
        return hi if end else lo
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        lo, hi = _string_bounds(value.isoformat())
        return hi if end else lo
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def _month(ts: pd.Timestamp, shift: int) -> str:
    return str(ts.tz_localize(None).to_period("M") + shift)


def _as_instant(value) -> dt.datetime:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()



class Table:
    """One silver or gold table: a Delta table partitioned by `symbol` then `month`.

    Cheap to create; every read opens the table's current version (or the pinned one: `pin`
    is a version number or a timestamp, as under `lake.at(...)`). Symbols, reprs and
    `partition_stats()` come from the Delta log and the lake catalog, never from data files.
    """

    def __init__(self, storage: Storage, layer: str, name: str, spans=None, pin=None, universe=None):
        """`spans`: a callable table name -> {symbol: [quality.Span]} naming the source files
        (from the bronze manifest) that say where bars are expected; None for derived tables.
        `universe`: a callable market -> `lake.universe(market)` frame (for `panel(universe=True)`).
        Gold names follow `schema.parse_gold_name` (kind as data_type, no bar interval)."""
        self.storage, self.layer, self.name, self._spans, self.pin = storage, layer, name, spans, pin
        self._universe = universe
        g = _gold_name(name) if layer == "gold" else None
        if g is not None:
            self.market, self.data_type, self.interval, self.time_col = g.market, g.kind, None, g.time_col
        else:
            self.market, self.data_type, self.interval = schema.parse_table_name(name)
            self.time_col = schema.time_column(self.data_type)
        self._rel = layout.table_dir(layer, name)

    def __repr__(self) -> str:
        syms = self.symbols
        pin = f" @ version {self.version}" if self.pin is not None else ""
        return f"<Table {self.layer}.{self.name}{pin}: {len(syms)} symbols>"

    def _repr_html_(self) -> str:
        d = self._dt()
        parts = self._partitions(d)
        syms = sorted({s for s, _ in parts})
        months = sorted({m for _, m in parts})
        span = f"{months[0]} … {months[-1]}" if months else "empty"
        shown = ", ".join(syms[:12]) + (f", … ({len(syms)} in all)" if len(syms) > 12 else "")
        return (f"<b>{html.escape(self.layer)}.{html.escape(self.name)}</b> — {len(syms)} symbols, "
                f"{len(parts)} partitions, months {html.escape(span)}, version {d.version()}"
                f"<br>symbols: {html.escape(shown)}"
                f"<br>next: <code>t.coverage()</code>, <code>t['{html.escape(syms[0] if syms else 'SYMBOL')}']</code>")

    # ------------------------------------------------------------ versions
    def _dt(self, version: int | None = None, as_of=None):
        """The DeltaTable at `version` / `as_of`, else at this table's pin, else current."""
        if version is not None and as_of is not None:
            raise ValueError("give version= or as_of=, not both")
        want = version if version is not None else as_of if as_of is not None else self.pin
        try:
            if want is None or isinstance(want, (int, np.integer)):
                return self.storage.open_table(self._rel, None if want is None else int(want))
            d = self.storage.open_table(self._rel)
            when = _as_instant(want)
            created = d.metadata().created_time
            if created is not None and when.timestamp() * 1000 < created:
                raise ValueError(f"{self.layer}.{self.name} did not exist yet at {when:%Y-%m-%d %H:%M:%S} UTC")
            d.load_as_version(when)
            return d
        except Exception as e:
            if type(e).__name__ in ("TableNotFoundError", "DeltaError", "OSError", "ValueError"):
                raise ValueError(f"{self.layer}.{self.name} has no version {want!r}: {e}") from None
            raise

    @property
    def version(self) -> int:
        """The version this handle reads (the current one unless pinned)."""
        return self._dt().version()

    def history(self, limit: int | None = None) -> pd.DataFrame:
        """One row per commit, newest first: version, timestamp, operation, rows_added,
        rows_removed, note (the ingest or build that made it)."""
        out = []
        for h in self.storage.open_table(self._rel).history(limit):
            m = h.get("operationMetrics") or {}
            added = m.get("num_added_rows", m.get("num_target_rows_inserted", m.get("num_output_rows")))
            removed = h.get("cryptolake_rows_removed", m.get("num_deleted_rows", m.get("num_target_rows_deleted")))
            out.append((h.get("version"), pd.Timestamp(h.get("timestamp"), unit="ms", tz="UTC"),
                        h.get("operation"), None if added is None else int(added),
                        None if removed is None else int(removed), h.get("cryptolake_note", "")))
        df = pd.DataFrame(out, columns=["version", "timestamp", "operation", "rows_added",
                                        "rows_removed", "note"])
        return df.astype({"rows_added": "Int64", "rows_removed": "Int64"})

    # ------------------------------------------------------------ metadata (the Delta log)
    def _actions(self, d) -> pd.DataFrame:
        """Per data file: symbol, month, rows, first, last (from the log's add actions)."""
        a = pa.table(d.get_add_actions(flatten=True))
        cols = {"partition.symbol": "symbol", "partition.month": "month", "num_records": "rows",
                f"min.{self.time_col}": "first", f"max.{self.time_col}": "last"}
        have = [c for c in cols if c in a.column_names]
        df = a.select(have).to_pandas().rename(columns=cols)
        for c in ("first", "last"):
            if c not in df:
                df[c] = pd.Series(pd.NaT, index=df.index, dtype="datetime64[us, UTC]")
        return df

    def _partitions(self, d=None) -> list[tuple[str, str]]:
        df = self._actions(d or self._dt())
        df = df[df["rows"].fillna(1) > 0]
        return sorted(set(zip(df["symbol"], df["month"])))

    @property
    def symbols(self) -> list[str]:
        """Symbols present in the table (from the Delta log; no data read)."""
        return sorted({s for s, _ in self._partitions()})

    def __contains__(self, symbol: str) -> bool:
        return symbol in self.symbols

    def partition_stats(self, version: int | None = None, as_of=None, _table=None) -> pd.DataFrame:
        """Per (symbol, month) partition: rows, on_grid, off_grid, zero_volume, first, last.

        Metadata only: rows/first/last from the Delta log, the counts from the lake catalog
        (recorded at write time). A partition whose catalog row disagrees with the log (a
        crash between the two commits) is recomputed from its data, and the catalog repaired
        when reading the current version."""
        from .layers import catalog
        d = _table if _table is not None else self._dt(version, as_of)
        acts = self._actions(d)
        cols = catalog.STATS_COLUMNS
        if acts.empty:
            return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(cols, [
                "string", "string", "int64", "int64", "int64", "int64",
                "datetime64[us, UTC]", "datetime64[us, UTC]"])})
        log = acts.groupby(["symbol", "month"], sort=True).agg(
            rows=("rows", "sum"), first=("first", "min"), last=("last", "max"))
        log = log[log["rows"] > 0]
        cat = catalog.read(self.storage, self.layer, self.name).set_index(["symbol", "month"])
        cat = cat.reindex(log.index)
        ok = (cat["rows"] == log["rows"]).fillna(False).to_numpy(bool).copy()
        # a catalog row written after the version read describes newer data: recompute it
        ok &= ~(cat["written_version"] > d.version()).fillna(False).to_numpy(bool)
        out = cat[cols[2:]].copy()
        bad = log.index[~ok]
        if len(bad):
            fixed = []
            for sym, month in bad:
                t = self.read_arrow([sym], columns=None, where=ds.field("month") == month, _table=d)
                fixed.append(catalog.partition_row(self.layer, self.name, sym, month, t, self.time_col,
                                                   self.interval, d.version()))
            fx = pd.DataFrame(fixed).set_index(["symbol", "month"])
            out.loc[bad, cols[2:]] = fx[cols[2:]].to_numpy()
            pinned = version is not None or as_of is not None or self.pin is not None
            if not pinned:
                catalog.upsert(self.storage, fixed)
        out = out.reset_index()
        for c in ("rows", "on_grid", "off_grid", "zero_volume"):
            out[c] = out[c].astype("int64")
        for c in ("first", "last"):
            out[c] = pd.to_datetime(out[c], utc=True).astype("datetime64[us, UTC]")
        return out[cols]

    # ------------------------------------------------------------ reads
    def _filter(self, symbols, start, end):
        f = None
        def add(expr):
            nonlocal f
            f = expr if f is None else f & expr
        if symbols is not None:
            add(ds.field("symbol").isin(list(symbols)))
        if start is not None:
            add(ds.field("month") >= _month(start, -1))
            add(ds.field(self.time_col) >= pa.scalar(start.to_pydatetime(), schema.TS))
        if end is not None:
            add(ds.field("month") <= _month(end, 1))
            add(ds.field(self.time_col) <= pa.scalar(end.to_pydatetime(), schema.TS))
        return f

    def dataset(self, version: int | None = None, as_of=None, symbols=None) -> ds.Dataset:
        """The pyarrow dataset of this table's version (files listed by the Delta log;
        partition filters prune whole files)."""
        d = self._dt(version, as_of)
        parts = [("symbol", "in", list(symbols))] if symbols else None
        return d.to_pyarrow_dataset(file_pruning_predicate=parts)

    def read_arrow(self, symbols=None, start=None, end=None, columns=None, where=None,
                   version: int | None = None, as_of=None, _table=None) -> pa.Table:
        """Like `read`, as an Arrow table with a `symbol` column (no index). `where`: an extra
        pyarrow dataset expression pushed down with the others."""
        s, e = _to_timestamp(start, end=False), _to_timestamp(end, end=True)
        if s is not None and e is not None and s > e:
            raise ValueError(f"start {s} is after end {e}")
        d = _table if _table is not None else self._dt(version, as_of)
        parts = [("symbol", "in", list(symbols))] if symbols else None
        dataset = d.to_pyarrow_dataset(file_pruning_predicate=parts)
        if columns is not None:
            unknown = [c for c in columns if c not in dataset.schema.names]
            if unknown:
                raise ValueError(f"unknown column(s) {unknown}; {self.name} has {dataset.schema.names}")
            cols = ["symbol", self.time_col] + [c for c in columns if c not in ("symbol", self.time_col)]
        else:
            cols = [c for c in dataset.schema.names if c != "month"]
        f = self._filter(symbols, s, e)
        if where is not None:
            f = where if f is None else f & where
        t = dataset.to_table(columns=cols, filter=f)
        return t.sort_by([("symbol", "ascending"), (self.time_col, "ascending")])

    def read(self, symbols=None, start=None, end=None, columns=None, version: int | None = None,
             as_of=None, phase=None) -> pd.DataFrame:
        """Rows of the table as a DataFrame.

        `symbols`: one symbol (str) -> indexed by the time column; several (or None on a
        multi-symbol table) -> (`symbol`, time) MultiIndex. `start`/`end`: both inclusive.
        Strings follow pandas' partial-string rules, as `df.loc["2024-01":"2024-02"]` does:
        `end="2024-02"` covers all of February, `end="2024-05-01"` that whole day; Timestamps
        (and datetimes) are instants, so `end=pd.Timestamp("2024-05-01")` stops at midnight.
        `columns`: a subset to read. `version=N` or `as_of=timestamp` reads that version of the
        table (reproducible reads). Symbol, month and time filters are pushed down to the
        Parquet partitions and row groups. Kline frames carry their interval in
        `df.attrs["interval"]`, which `df.lake` uses as the bar size. `phase="5min"` (gold
        bars built with phases) keeps the bars of that offset only (pushed down).
        """
        d = self._dt(version, as_of)
        where = self._phase_filter(d, phase)
        single = isinstance(symbols, str)
        if single:
            symbols = [symbols]
        elif symbols is not None:
            symbols = list(symbols)
            single = len(symbols) == 1
        known = sorted({s for s, _ in self._partitions(d)})
        if symbols:
            unknown = [s for s in symbols if s not in set(known)]
            if unknown:
                raise KeyError(f"{unknown} not in {self.layer}.{self.name}; "
                               f"symbols: {known[:20]}{' …' if len(known) > 20 else ''}")
        elif symbols is None:
            single = len(known) == 1
        df = self.read_arrow(symbols, start, end, columns, where=where, _table=d).to_pandas()
        if where is not None and not len(df):
            have = sorted(set(d.to_pyarrow_dataset().to_table(columns=["phase"])["phase"].to_pylist()))
            from .gold.kinds import phase_label
            if phase_label(phase) not in have:
                raise ValueError(f"{self.name} has no phase {phase!r}; phases: {', '.join(have) or 'none'}")
        if self.interval:
            df.attrs["interval"] = self.interval
        if single:
            df = df.drop(columns="symbol").set_index(self.time_col)
        else:
            df["symbol"] = df["symbol"].astype(str)
            df = df.set_index(["symbol", self.time_col])
        if self.interval:     # df.lake uses it: the bar size is known, never guessed
            df.attrs[grid.ATTR] = self.interval
        return df

    def __getitem__(self, key) -> pd.DataFrame:
        """`t["BTCUSDT"]`, `t["BTCUSDT", "2024-01":"2024-02"]` (both ends inclusive, partial
        strings as in pandas) or `t["BTCUSDT", "2024"]` (the whole period a string names)."""
        if isinstance(key, tuple):
            sym, when = key
            if not isinstance(when, slice):
                return self.read(sym, when, when)
            return self.read(sym, when.start, when.stop)
        return self.read(key)

    def _phase_filter(self, d, phase):
        """The dataset filter of `read(phase=...)` (None when no phase is asked for)."""
        if phase is None:
            return None
        names = d.to_pyarrow_dataset().schema.names
        if "phase" not in names:
            raise ValueError(f"{self.layer}.{self.name} has no phase column; phase= applies to gold bars "
                             "built with phases=")
        from .gold.kinds import phase_label
        return ds.field("phase") == phase_label(phase)

    def panel(self, field: str = "close", symbols=None, start=None, end=None, universe: bool = False,
              phase=None) -> pd.DataFrame:
        """Wide time x symbol frame of one column (for backtests); NaN where a symbol has no row.

        `universe=True`: a symbol's values are kept only inside its trading segments from
        `lake.universe(market)` (point in time: a delisted symbol is NaN after its last day,
        a relisted one between its segments). On a gold bars table with phases, `phase`
        picks one offset (default: the table's first phase, "0min")."""
        d = self._dt()
        names = d.to_pyarrow_dataset().schema.names
        if field not in names or field in _META_COLS:
            raise ValueError(f"unknown panel column {field!r}; {self.name} has "
                             f"{[c for c in names if c not in _META_COLS]}")
        if "phase" in names and phase is None:
            phase = "0min"
        where = self._phase_filter(d, phase)
        t = self.read_arrow(symbols, start, end, columns=[field], where=where, _table=d).to_pandas()
        t["symbol"] = t["symbol"].astype(str)
        wide = t.pivot(index=self.time_col, columns="symbol", values=field)
        if universe:
            wide = self._universe_mask(wide)
        return wide

    def _universe_mask(self, wide: pd.DataFrame) -> pd.DataFrame:
        if self._universe is None:
            raise ValueError("universe=True needs a table opened from a Lake (lake.silver[...] / lake.gold[...])")
        uni = self._universe(self.market).set_index("symbol")
        days = wide.index.tz_convert("UTC").tz_localize(None).normalize() if len(wide) else wide.index
        out = wide.copy()
        for sym in out.columns:
            segs = uni.at[sym, "segments"] if sym in uni.index else []
            keep = np.zeros(len(out), bool)
            for a, b in segs:
                keep |= (days >= pd.Timestamp(a)) & (days <= pd.Timestamp(b))
            out.loc[~keep, sym] = np.nan
        return out

    def to_dask(self, version: int | None = None, as_of=None):
        """A `dask.dataframe` over this table's version (current, pinned, `version=` or
        `as_of=`): one partition per Delta data file, read with the lake's storage_options
        on whichever worker runs it. Columns as `read_arrow` (plus `month`), unindexed."""
        from .scale import table_to_dask
        return table_to_dask(self, self._dt(version, as_of))

    # ------------------------------------------------------------ quality
    def _spans_now(self) -> dict:
        return self._spans(self.name) if self._spans is not None else {}

    def _times(self, symbols, start, end, extra=()) -> dict[str, np.ndarray]:
        t = self.read_arrow(symbols, start, end, columns=[self.time_col, *extra])
        syms, times = _symbols_times(t, self.time_col)
        cuts = np.flatnonzero(np.r_[True, syms[1:] != syms[:-1], True])
        out = {syms[a]: times[a:b] for a, b in zip(cuts[:-1], cuts[1:])}
        cols = {c: t[c].to_numpy(zero_copy_only=False) for c in extra}
        return out, {c: {syms[a]: v[a:b] for a, b in zip(cuts[:-1], cuts[1:])} for c, v in cols.items()}

    def coverage(self) -> pd.DataFrame:
        """Per symbol: `listed_from`/`listed_to` (the span bars are expected in: the ingested
        part of the symbol's listed life — bars before its first archive file or after its last
        are not expected), `first`/`last` bar, `rows`, `expected` (grid points in the listed
        span), `missing` (expected bars absent: the sum of `gaps()`'s non-halt runs), `off_grid`
        (rows off the interval's grid: counted, never gaps) and `zero_volume` bars. Event
        tables (trades, metrics, …) have no bar grid: their `expected`/`missing` count days of
        data (days in the listed span / days no usable file covers)."""
        from . import quality
        if not self.symbols:
            return quality._coverage_frame([])
        if self.data_type == "fundingRate":
            times, extra = self._times(None, None, None, ("funding_interval_hours",))
            return quality.funding_coverage(times, extra["funding_interval_hours"], self._spans_now())
        stats = self.partition_stats()            # metadata only: no data file is read
        for c in ("first", "last"):
            stats[c] = stats[c].astype("datetime64[us, UTC]").astype("int64")
        if not self.interval:                     # trades, metrics, ...: counted in days
            return quality.event_coverage(stats, self._spans_now())
        return quality.coverage(self.interval, stats, self._spans_now())

    def gaps(self, symbols=None, start=None, end=None) -> pd.DataFrame:
        """Every gap of every symbol, with its cause: symbol, start, end, missing, cause.

        `start`/`end` are the open times of the first and last missing (or, for `halt`, flat)
        bar. Every bar inside a symbol's listed span (see `coverage`) and inside [start, end]
        is present or inside one gap. Causes: missing_file, partial_file, outage, halt (futures
        only), relisting — see `cryptolake.quality`. Off-grid rows never make a gap.
        """
        from . import quality
        syms = None if symbols is None else ([symbols] if isinstance(symbols, str) else list(symbols))
        s, e = _to_timestamp(start, end=False), _to_timestamp(end, end=True)
        lo = None if s is None else s.value // 1000
        hi = None if e is None else e.value // 1000
        spans = self._spans_now()
        if syms is not None:
            spans = {k: v for k, v in spans.items() if k in syms}
        d = self._dt() if self.storage.is_delta(self._rel) else None   # None: nothing written yet
        held = {x for x, _ in self._partitions(d)} if d is not None else set()
        present = [x for x in (syms or sorted(held)) if x in held]
        if self.data_type == "fundingRate":
            times, extra = self._times(present, s, e, ("funding_interval_hours",)) if present else ({}, {"funding_interval_hours": {}})
            return quality.funding_gaps(times, extra["funding_interval_hours"], spans, lo, hi)
        if not self.interval:       # event tables: days no usable file covers
            return quality.event_gaps(spans, lo, hi, quality.relisting_days(self.market, self.data_type, None))
        times, zeros = self._grid_times(present, lo, hi, d)
        rest = [x for x in present if x not in times]
        if rest:
            times.update(self._times(rest, s, e)[0])
        flat = None
        if self.data_type == "klines" and self.market in quality.HALT_MARKETS and present \
                and not grid.is_calendar(self.interval):
            # a halt is a run of HALT_MIN of zero-volume bars: a symbol whose partitions hold
            # fewer in all (catalog counts) has none, and none of its rows is read
            least = quality.halt_min_bars(grid.step_us(self.interval))
            look = [x for x in present if zeros is None or zeros.get(x, 0) >= least]
            flat = self._halts(look, s, e, d) if look else None
        return quality.table_gaps(self.interval, times, spans, lo, hi, flat,
                                  quality.relisting_days(self.market, self.data_type, self.interval))

    def _halts(self, present, s, e, d) -> pd.DataFrame | None:
        """`quality.halts` of `present` in [s, e] at snapshot `d` (None: no run long enough).
        The zero-volume rows' times are read first (two columns): only a symbol with a run of
        them long enough to be a halt has its prices read."""
        from . import quality
        zero, step = ds.field("volume") == 0, grid.step_us(self.interval)
        z = self.read_arrow(present, s, e, columns=[self.time_col], where=zero, _table=d)
        maybe = quality.halt_candidates(*_symbols_times(z, self.time_col), step)
        if not maybe:
            return None
        cols = [self.time_col, "open", "high", "low", "close", "volume"]
        z = self.read_arrow(maybe, s, e, columns=cols, where=zero, _table=d)
        return quality.halts(*_symbols_times(z, self.time_col), *(z[c].to_numpy() for c in cols[1:]), step)

    def _grid_times(self, present, lo, hi, d=None) -> tuple[dict[str, np.ndarray], dict | None]:
        """Bar times of the symbols whose partitions are provably complete, from metadata
        alone (no data file read): a kline partition whose rows are all on the grid and number
        (last - first) / step + 1 holds exactly every bar from first to last (open_time is
        unique in silver). Returns ({symbol: times in [lo, hi]}, {symbol: zero-volume bars in
        all its partitions}, the latter None when the metadata does not say)."""
        if not present or self.data_type not in schema.KLINE_TYPES or not self.interval \
                or grid.is_calendar(self.interval):
            return {}, None
        st = self.partition_stats(_table=d)
        st = st[st["symbol"].isin(present)]
        if not len(st):
            return {}, None
        step = grid.step_us(self.interval)
        first = st["first"].astype("int64").to_numpy()
        last = st["last"].astype("int64").to_numpy()
        rows, on = st["rows"].to_numpy(np.int64), st["on_grid"].to_numpy(np.int64)
        whole = (rows == on) & (rows == (last - first) // step + 1)
        sym = st["symbol"].to_numpy(object)
        out: dict[str, np.ndarray] = {}
        for x in present:
            mine = sym == x
            if not mine.any() or not whole[mine].all():
                continue
            order = np.argsort(first[mine], kind="stable")
            t = np.concatenate([np.arange(a, b + step, step, dtype=np.int64)
                                for a, b in zip(first[mine][order], last[mine][order])])
            if lo is not None:
                t = t[t >= lo]
            if hi is not None:
                t = t[t <= hi]
            out[x] = t
        zeros = st.groupby("symbol")["zero_volume"].sum()
        return out, {str(k): int(v) for k, v in zeros.items()}

    def off_grid(self, symbols=None, start=None, end=None) -> pd.DataFrame:
        """The rows whose time is not on the interval's grid (a 04:05 bar in a 1h table)."""
        df = self.read(symbols if symbols is not None else self.symbols, start, end)
        if not self.interval or not len(df):
            return df.iloc[:0]
        t = df.index.get_level_values(-1).as_unit("us").asi8
        return df[~grid.on_grid(t, self.interval)]


def _gold_name(name: str):
    try:
        return schema.parse_gold_name(name)
    except ValueError:
        return None


def _symbols_times(t: pa.Table, time_col: str) -> tuple[np.ndarray, np.ndarray]:
    return (t["symbol"].to_numpy(zero_copy_only=False).astype(str),
            t[time_col].to_numpy().astype("datetime64[us]").astype(np.int64))


class Layer:
    """`lake.silver` / `lake.gold`: tables by name, by attribute, in SQL.

    `pins`: None (current versions), {table: version} or a timestamp (under `lake.at`);
    `spans`: passed to every Table (see `Table.__init__`)."""

    def __init__(self, storage: Storage, layer: str, spans=None, pins=None, universe=None):
        self.storage, self.layer, self._spans, self.pins = storage, layer, spans, pins
        self._universe = universe

    def _parse(self, name: str):
        """Gold accepts gold names and (tables written before gold builds) silver-style names."""
        if self.layer == "gold" and _gold_name(name) is not None:
            return _gold_name(name)
        return schema.parse_table_name(name)

    def _pin(self, name: str):
        if isinstance(self.pins, dict):
            return self.pins.get(name)
        return self.pins

    @property
    def tables(self) -> list[str]:
        names = []
        for p in self.storage.ls(self.layer):
            name = p.rstrip("/").rsplit("/", 1)[-1]
            try:
                self._parse(name)
            except ValueError:
                continue
            if isinstance(self.pins, dict) and name not in self.pins:
                continue
            if self.pins is not None and not isinstance(self.pins, dict):   # pinned at a time:
                try:                                                         # only tables that existed
                    Table(self.storage, self.layer, name, pin=self.pins).version
                except ValueError:
                    continue
            names.append(name)
        return sorted(names)

    def __getitem__(self, name: str) -> Table:
        if name not in self.tables:
            raise KeyError(f"no table {name!r} in {self.layer}; tables: {self.tables or 'none yet'} "
                           "(create one with lake.ingest(market, data_type, ...))")
        rel = layout.table_dir(self.layer, name)
        if not self.storage.is_delta(rel):
            raise LegacyLayoutError(
                f"{self.layer}.{name} is in the pre-Delta layout (plain Parquet partitions); run "
                f"lake.migrate() or `cryptolake migrate {self.storage.url}` to convert the lake")
        return Table(self.storage, self.layer, name, self._spans, pin=self._pin(name),
                     universe=self._universe)

    def stale(self) -> pd.DataFrame:
        """Gold only: the (table, symbol, month) partitions whose inputs changed since their
        build (republished or new silver files), as `lake.build_gold()` would rebuild them."""
        if self.layer != "gold":
            raise ValueError("stale() applies to lake.gold (silver is rebuilt by ingest)")
        from .gold.build import stale
        return stale(self.storage, pins=self.pins)

    def __getattr__(self, name: str) -> Table:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(str(e)) from None

    def __dir__(self) -> Iterable[str]:
        return sorted(set(super().__dir__()) | set(self.tables))

    def __contains__(self, name: str) -> bool:
        return name in self.tables

    def __iter__(self):
        return iter(self.tables)

    def __len__(self) -> int:
        return len(self.tables)

    def __repr__(self) -> str:
        return f"<{self.layer}: {', '.join(self.tables) or 'no tables'}>"

    def _repr_html_(self) -> str:
        rows = "".join(f"<li><code>{html.escape(t)}</code></li>" for t in self.tables)
        return (f"<b>{self.layer}</b> — {len(self.tables)} tables<ul>{rows}</ul>"
                f"next: <code>lake.{self.layer}['NAME'].coverage()</code>")
